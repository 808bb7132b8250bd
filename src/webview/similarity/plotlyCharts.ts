/**
 * The one place the similarity views call plotly: draw a figure into an element (static, no mode bar: the page has
 * its own export buttons) and render a figure to PNG. Shared by the panel and the notebook renderer.
 */
import Plotly from 'plotly.js-dist';
import type { Figure } from './heatmapFigure';

/** Plotly's config for every chart: responsive, no mode bar (its icons need inline styles the CSP forbids), no logo. */
const CONFIG = { responsive: true, displayModeBar: false, displaylogo: false, scrollZoom: false };

/** Draws or updates `figure` in `element` (Plotly.react diffs against what is there). */
export async function drawFigure(element: HTMLElement, figure: Figure): Promise<void> {
  await Plotly.react(element, figure.data as never, figure.layout as never, CONFIG as never);
}

/** A PNG data URL of `figure` at width × height CSS pixels (scale 2), with `background` behind it. */
export async function figurePng(figure: Figure, width: number, height: number, background: string): Promise<string> {
  const layout = { ...figure.layout, paper_bgcolor: background, plot_bgcolor: background, width, height };
  return Plotly.toImage({ data: figure.data, layout } as never, { format: 'png', width, height, scale: 2 } as never);
}

/** Listens for clicks on a drawn chart; hands back the clicked point's y category (a row name). */
export function onRowClick(element: HTMLElement, listener: (row: string) => void): void {
  const chart = element as HTMLElement & { on?: (event: string, handler: (e: { points?: { y?: unknown }[] }) => void) => void };
  chart.on?.('plotly_click', (e) => {
    const y = e.points?.[0]?.y;
    if (typeof y === 'string') listener(y);
  });
}

export function removeFigure(element: HTMLElement): void {
  Plotly.purge(element);
}
