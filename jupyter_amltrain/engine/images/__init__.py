"""Environments as Docker images (and local virtual environments): hashing, Dockerfiles, builds, registries."""
