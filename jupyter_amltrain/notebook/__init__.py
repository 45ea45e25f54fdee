"""The notebook face: IPython extension and magics, the preloaded kernelspec, session lookup.

Nothing is imported here so that ``import jupyter_amltrain.notebook`` stays cheap; ``%load_ext
jupyter_amltrain`` goes through ``jupyter_amltrain.notebook.extension``.
"""
