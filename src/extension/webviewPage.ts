/** What every webview page of the extension shares: the per-render nonce of its CSP and HTML escaping. */
import { randomBytes } from 'node:crypto';

/** 128 random bits, base64: a new one for every render so an injected script can never guess it. */
export function newNonce(): string {
  return randomBytes(16).toString('base64');
}

/** Escapes text for an HTML attribute or text node. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
