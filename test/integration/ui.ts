// Lets an integration test drive the VS Code page like a person — keys, clicks, reading text, screenshots — through
// the loopback endpoint scripts/vscode-shim.mjs opens next to the browser. Available only in the code-server host
// (AWD_TEST_HOST=electron has no page to drive): suites call `ui.available()` and skip otherwise.

/** What the driver can do; `frame` picks the first frame whose URL contains that text (webview content: "webview"). */
type UiRequest =
  | { op: 'press'; key: string }
  | { op: 'type'; text: string }
  | { op: 'click'; selector: string; frame?: string; button?: 'left' | 'right'; timeoutMs?: number }
  | { op: 'waitFor'; selector: string; frame?: string; timeoutMs?: number }
  | { op: 'text'; selector: string; frame?: string; timeoutMs?: number }
  | { op: 'runCommand'; title: string; timeoutMs?: number }
  | { op: 'screenshot'; path: string; selector?: string; frame?: string; timeoutMs?: number };

interface UiReply {
  ok: boolean;
  value?: unknown;
  error?: string;
}

async function send(request: UiRequest): Promise<unknown> {
  const url = process.env.AWD_UI_DRIVER_URL;
  if (!url) throw new Error('no UI driver: integration tests run without the code-server host (check ui.available() first)');
  const response = await fetch(url, { method: 'POST', body: JSON.stringify(request) });
  const reply = (await response.json()) as UiReply;
  if (!reply.ok) throw new Error(`UI ${request.op} failed: ${reply.error ?? 'unknown error'}`);
  return reply.value;
}

type Where = { frame?: string; timeoutMs?: number };

/** An Explorer row by file name (a selector for ui.click / ui.waitFor). */
export function explorerRow(name: string): string {
  return `.explorer-folders-view .monaco-list-row[aria-label="${name}"]`;
}

/** A context-menu entry by its title. */
export function menuEntry(title: string): string {
  return `.monaco-menu .action-item:not(.disabled) .action-label:text-is("${title}")`;
}

export const ui = {
  available: (): boolean => Boolean(process.env.AWD_UI_DRIVER_URL),
  /** A key or chord in Playwright's notation: "F1", "Enter", "Control+Shift+P". */
  press: async (key: string): Promise<void> => void (await send({ op: 'press', key })),
  type: async (text: string): Promise<void> => void (await send({ op: 'type', text })),
  click: async (selector: string, where: Where & { button?: 'left' | 'right' } = {}): Promise<void> =>
    void (await send({ op: 'click', selector, ...where })),
  waitFor: async (selector: string, where: Where = {}): Promise<void> => void (await send({ op: 'waitFor', selector, ...where })),
  text: async (selector: string, where: Where = {}): Promise<string> => String(await send({ op: 'text', selector, ...where })),
  /** Runs a palette entry by its full title ("AWD: Show Log") through F1, as a user would. */
  runCommand: async (title: string, timeoutMs?: number): Promise<void> => void (await send({ op: 'runCommand', title, timeoutMs })),
  /** Saves a PNG of the page, or of one element, at an absolute path; returns the path. */
  screenshot: async (path: string, element: Where & { selector?: string } = {}): Promise<string> =>
    String(await send({ op: 'screenshot', path, ...element })),
};
