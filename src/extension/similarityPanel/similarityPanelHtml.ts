/**
 * The similarity panel's page: a strict Content-Security-Policy — nothing loads but our own stylesheet and the one
 * script carrying this render's nonce (plotly is bundled into it, never fetched from a CDN); images only from
 * data:/blob: URLs, which is how plotly paints heatmap cells and exports PNGs. Plotly adds its few global CSS
 * rules through the CSSOM into the nonce-carrying <style> element it looks up by id. Pure string building.
 */
import { escapeHtml, newNonce } from '../webviewPage';

export interface SimilarityPageResources {
  /** `webview.cspSource`. */
  cspSource: string;
  /** asWebviewUri(dist/similarity.js) and asWebviewUri(dist/similarity.css), as strings. */
  scriptUri: string;
  styleUri: string;
  title: string;
  /** Fresh per render. */
  nonce: string;
}

export { newNonce, escapeHtml };

/** The Content-Security-Policy of the page. */
export function similarityPageCsp(cspSource: string, nonce: string): string {
  return [
    "default-src 'none'",
    `style-src ${cspSource} 'nonce-${nonce}'`,
    `img-src ${cspSource} data: blob:`,
    `font-src ${cspSource}`,
    `script-src 'nonce-${nonce}'`,
  ].join('; ');
}

export function similarityPageHtml(r: SimilarityPageResources): string {
  const nonce = escapeHtml(r.nonce);
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${escapeHtml(similarityPageCsp(r.cspSource, r.nonce))}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${escapeHtml(r.styleUri)}">
<style id="plotly.js-style-global" nonce="${nonce}"></style>
<title>${escapeHtml(r.title)}</title>
</head>
<body>
<main id="app" aria-busy="true"><p class="status">Preparing the similarity analysis…</p></main>
<script nonce="${nonce}" src="${escapeHtml(r.scriptUri)}"></script>
</body>
</html>
`;
}
