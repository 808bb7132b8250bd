/**
 * The inspector webview's page: a strict Content-Security-Policy (nothing but our own stylesheet and the one script
 * carrying this render's nonce), the table rendered by dist/inspector.js. Pure string building, unit-tested.
 */
import { escapeHtml, newNonce } from '../webviewPage';

export interface InspectorPageResources {
  /** `webview.cspSource`. */
  cspSource: string;
  /** asWebviewUri(dist/inspector.js) and asWebviewUri(media/inspector.css), as strings. */
  scriptUri: string;
  styleUri: string;
  title: string;
  /** Fresh per render. */
  nonce: string;
}

export { newNonce, escapeHtml };

export function inspectorPageHtml(r: InspectorPageResources): string {
  const csp = [
    "default-src 'none'",
    `style-src ${r.cspSource}`,
    `img-src ${r.cspSource}`,
    `font-src ${r.cspSource}`,
    `script-src 'nonce-${r.nonce}'`,
  ].join('; ');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp.replace(/"/g, '')}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${escapeHtml(r.styleUri)}">
<title>${escapeHtml(r.title)}</title>
</head>
<body>
<main id="app" aria-busy="true"><p class="status">Reading the header of ${escapeHtml(r.title)}…</p></main>
<script nonce="${escapeHtml(r.nonce)}" src="${escapeHtml(r.scriptUri)}"></script>
</body>
</html>
`;
}
