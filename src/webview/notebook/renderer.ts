/**
 * Notebook renderer for `application/vnd.awd.similarity+json` (bundled as an ES module to
 * dist/notebookRenderer.js): a cell output holding the JSON of `awd-merge similarity --json` shows the same K×K
 * heatmap as the panel — before and after AWD side by side when AWD ran — with the mean |cos| and the most
 * interfering tensors. Data reaches the DOM as text nodes only.
 */
import { matrixFigure, type FigureTheme } from '../similarity/heatmapFigure';
import { drawFigure, removeFigure } from '../similarity/plotlyCharts';
import { notebookSimilarity } from './reportMatrices';

/** The part of VS Code's notebook renderer API this renderer uses. */
interface OutputItem {
  readonly id: string;
  readonly mime: string;
  json(): unknown;
}

interface RendererApi {
  renderOutputItem(item: OutputItem, element: HTMLElement, signal?: AbortSignal): void | Promise<void>;
  disposeOutputItem?(id?: string): void;
}

function cssVar(element: HTMLElement, name: string, fallback: string): string {
  const v = getComputedStyle(element).getPropertyValue(name).trim();
  return v === '' ? fallback : v;
}

function theme(element: HTMLElement): FigureTheme {
  const size = Number.parseFloat(cssVar(element, '--vscode-font-size', '13'));
  return {
    foreground: cssVar(element, '--vscode-foreground', '#cccccc'),
    grid: cssVar(element, '--vscode-editorWidget-border', 'rgba(128,128,128,0.3)'),
    fontFamily: cssVar(element, '--vscode-font-family', 'sans-serif'),
    fontSize: Number.isFinite(size) ? size : 13,
  };
}

function text<K extends keyof HTMLElementTagNameMap>(tag: K, content: string, className?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  e.textContent = content;
  if (className) e.className = className;
  return e;
}

const charts = new Map<string, HTMLElement>();

export function activate(): RendererApi {
  return {
    async renderOutputItem(item, element) {
      element.replaceChildren();
      const parsed = notebookSimilarity(item.json());
      if (typeof parsed === 'string') {
        element.append(text('p', `AWD similarity: ${parsed}`));
        return;
      }
      const root = document.createElement('div');
      root.className = 'awd-similarity';
      const summary =
        `${parsed.labels.length} models · ${parsed.tensorCount} tensors · ${parsed.elements.toLocaleString('en-US')} parameters · mean |cos| ${parsed.meanAbsBefore.toFixed(4)}` +
        (parsed.meanAbsAfter !== undefined ? ` → ${parsed.meanAbsAfter.toFixed(4)} after AWD` : '');
      root.append(text('div', summary, 'awd-similarity-summary'));
      const chart = document.createElement('div');
      chart.className = 'awd-similarity-heatmap';
      const K = parsed.labels.length;
      chart.style.width = '100%';
      chart.style.height = `${Math.max(320, Math.min(760, 130 + K * 56))}px`;
      root.append(chart);
      if (parsed.topTensors.length > 0) {
        const list = document.createElement('ol');
        list.className = 'awd-similarity-tensors';
        for (const t of parsed.topTensors) {
          list.append(text('li', `${t.name}: mean |cos| ${t.meanAbs.toFixed(4)}${t.meanAbsAfter !== undefined ? ` → ${t.meanAbsAfter.toFixed(4)}` : ''}`));
        }
        root.append(text('div', 'Most interfering tensors:'), list);
      }
      element.append(root);
      charts.set(item.id, chart);
      await drawFigure(chart, matrixFigure(parsed.matrices, parsed.labels, theme(element)));
    },
    disposeOutputItem(id) {
      for (const [key, chart] of charts) {
        if (id === undefined || key === id) {
          removeFigure(chart);
          charts.delete(key);
        }
      }
    },
  };
}
