import { LabIcon } from '@jupyterlab/ui-components';

// A processor with a rising curve: GPUs and training runs. `jp-icon3` follows the theme's icon colour.
const svgstr = `<svg xmlns="http://www.w3.org/2000/svg" width="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <path d="M9 1h2v3H9zM13 1h2v3h-2zM9 20h2v3H9zM13 20h2v3h-2zM1 9h3v2H1zM1 13h3v2H1zM20 9h3v2h-3zM20 13h3v2h-3z"/>
    <path d="M6 4h12a2 2 0 0 1 2 2v12a2 2 0 0 1-2 2H6a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2zm0 2v12h12V6z"/>
    <path d="M7.5 15.5l3-4 2 2 4-5.5 1.2.9-5 6.9-2-2-2 2.6z"/>
  </g>
</svg>`;

export const amltrainIcon = new LabIcon({ name: 'jupyter-amltrain:icon', svgstr });
