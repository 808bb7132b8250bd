/**
 * The merge-quality plot: one panel per merge method, average accuracy against λ with and without AWD, drawn as
 * an SVG and rendered to PNG by headless Chromium (so text and lines are anti-aliased without a font rasteriser).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

export interface PlotSeries {
  readonly label: string;
  readonly dashed: boolean;
  readonly color: string;
  /** (λ, accuracy in percent) points in λ order. */
  readonly points: readonly (readonly [number, number])[];
}

export interface PlotPanel {
  readonly title: string;
  readonly series: readonly PlotSeries[];
}

export interface PlotReference {
  readonly label: string;
  readonly value: number;
}

const WIDTH = 1200;
const PANEL_H = 360;
const escapeXml = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** "Nice" tick values from at or below `lo` to at or above `hi`: steps of 1, 2 or 5 × 10^k, about `count` of them. */
export function niceTicks(lo: number, hi: number, count: number): number[] {
  const raw = (hi - lo) / Math.max(1, count);
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw) ?? 10 * power;
  const ticks: number[] = [];
  for (let k = Math.floor(lo / step + 1e-9); k <= Math.ceil(hi / step - 1e-9); k++) ticks.push(Number((k * step).toFixed(10)));
  return ticks;
}

/** An SVG with the panels in a 2-column grid, sharing one y range so that panels compare at a glance. */
export function accuracySvg(title: string, panels: readonly PlotPanel[], references: readonly PlotReference[]): string {
  const columns = 2;
  const rows = Math.ceil(panels.length / columns);
  const height = 80 + rows * PANEL_H + 10;
  const values = [...panels.flatMap((p) => p.series.flatMap((s) => s.points.map((q) => q[1]))), ...references.map((r) => r.value)];
  const ticksY = niceTicks(Math.min(...values) - 2, Math.max(...values) + 2, 6);
  const yLo = ticksY[0]!;
  const yHi = ticksY[ticksY.length - 1]!;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="DejaVu Sans, Arial, sans-serif">`,
    `<rect width="${WIDTH}" height="${height}" fill="#ffffff"/>`,
    `<text x="${WIDTH / 2}" y="32" font-size="20" text-anchor="middle" fill="#222">${escapeXml(title)}</text>`,
  ];
  const panelW = WIDTH / columns;
  panels.forEach((panel, index) => {
    const ox = (index % columns) * panelW;
    const oy = 70 + Math.floor(index / columns) * PANEL_H;
    const left = ox + 70;
    const right = ox + panelW - 30;
    const top = oy + 40;
    const bottom = oy + PANEL_H - 55;
    const xs = panel.series.flatMap((s) => s.points.map((q) => q[0]));
    const ticksX = niceTicks(0, Math.max(...xs), 5);
    const xHi = ticksX[ticksX.length - 1]!;
    const px = (x: number): number => left + (x / xHi) * (right - left);
    const py = (y: number): number => bottom - ((y - yLo) / (yHi - yLo)) * (bottom - top);
    out.push(`<text x="${(left + right) / 2}" y="${oy + 24}" font-size="16" text-anchor="middle" fill="#222">${escapeXml(panel.title)}</text>`);
    for (const t of ticksY) {
      out.push(`<line x1="${left}" x2="${right}" y1="${py(t)}" y2="${py(t)}" stroke="#e4e4e4"/>`);
      out.push(`<text x="${left - 8}" y="${py(t) + 4}" font-size="12" text-anchor="end" fill="#444">${t}</text>`);
    }
    for (const t of ticksX) {
      out.push(`<line x1="${px(t)}" x2="${px(t)}" y1="${bottom}" y2="${bottom + 5}" stroke="#444"/>`);
      out.push(`<text x="${px(t)}" y="${bottom + 20}" font-size="12" text-anchor="middle" fill="#444">${t}</text>`);
    }
    out.push(`<rect x="${left}" y="${top}" width="${right - left}" height="${bottom - top}" fill="none" stroke="#444"/>`);
    out.push(`<text x="${(left + right) / 2}" y="${bottom + 40}" font-size="13" text-anchor="middle" fill="#222">λ</text>`);
    out.push(`<text transform="translate(${ox + 20} ${(top + bottom) / 2}) rotate(-90)" font-size="13" text-anchor="middle" fill="#222">average accuracy (%)</text>`);
    for (const r of references) {
      out.push(`<line x1="${left}" x2="${right}" y1="${py(r.value)}" y2="${py(r.value)}" stroke="#888" stroke-dasharray="2 4"/>`);
      out.push(`<text x="${right - 4}" y="${py(r.value) - 5}" font-size="11" text-anchor="end" fill="#666">${escapeXml(r.label)}</text>`);
    }
    panel.series.forEach((s) => {
      const path = s.points.map((q, i) => `${i ? 'L' : 'M'}${px(q[0]).toFixed(1)},${py(q[1]).toFixed(1)}`).join(' ');
      out.push(`<path d="${path}" fill="none" stroke="${s.color}" stroke-width="2.2"${s.dashed ? ' stroke-dasharray="7 4"' : ''}/>`);
      for (const q of s.points) {
        out.push(
          s.dashed
            ? `<rect x="${px(q[0]) - 3.5}" y="${py(q[1]) - 3.5}" width="7" height="7" fill="${s.color}"/>`
            : `<circle cx="${px(q[0])}" cy="${py(q[1])}" r="3.8" fill="${s.color}"/>`,
        );
      }
    });
  });
  // One legend for all panels: every panel draws its series in the same styles.
  (panels[0]?.series ?? []).forEach((s, k) => {
    const lx = WIDTH / 2 - 150 + 170 * k;
    out.push(`<line x1="${lx}" x2="${lx + 34}" y1="54" y2="54" stroke="${s.color}" stroke-width="2.2"${s.dashed ? ' stroke-dasharray="7 4"' : ''}/>`);
    out.push(`<text x="${lx + 42}" y="58" font-size="13" fill="#222">${escapeXml(s.label)}</text>`);
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

/** Width and height from the SVG's root element. */
function svgSize(svg: string): [number, number] {
  const m = /<svg[^>]*width="(\d+)"[^>]*height="(\d+)"/.exec(svg);
  return m ? [Number(m[1]), Number(m[2])] : [WIDTH, 800];
}

/** Renders `svg` to `pngPath` with headless Chromium; returns false (and writes nothing) when there is none. */
export function renderSvgToPng(svg: string, pngPath: string, chromium = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'): boolean {
  if (!existsSync(chromium)) return false;
  const dir = mkdtempSync(join(tmpdir(), 'awd-plot-'));
  try {
    const page = join(dir, 'plot.html');
    writeFileSync(page, `<!doctype html><html><body style="margin:0;background:#fff">${svg}</body></html>`);
    const [w, h] = svgSize(svg);
    const r = spawnSync(
      chromium,
      ['--headless', '--no-sandbox', '--disable-gpu', '--hide-scrollbars', `--user-data-dir=${join(dir, 'profile')}`, `--window-size=${w},${h}`, `--screenshot=${pngPath}`, pathToFileURL(page).href],
      { encoding: 'utf8', timeout: 120_000 },
    );
    return r.status === 0 && existsSync(pngPath);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
