import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { newNonce, similarityPageCsp, similarityPageHtml } from '../../../src/extension/similarityPanel/similarityPanelHtml';

void test('the page loads only its own script and stylesheet under a nonce, with no network source at all', () => {
  const nonce = newNonce();
  assert.notEqual(nonce, newNonce());
  const csp = similarityPageCsp('https://file+.vscode-resource.vscode-cdn.net', nonce);
  assert.match(csp, /^default-src 'none'; /);
  assert.match(csp, new RegExp(`script-src 'nonce-${nonce.replace(/[+/=]/g, (c) => `\\${c}`)}'$`));
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*/);
  const html = similarityPageHtml({ cspSource: 'vscode-resource:', scriptUri: 'vscode-resource:/dist/similarity.js', styleUri: 'vscode-resource:/dist/similarity.css', title: 'a <b> & "c"', nonce });
  const scripts = [...html.matchAll(/<script([^>]*)>/g)].map((m) => m[1]!);
  assert.equal(scripts.length, 1);
  assert.ok(scripts[0]!.includes(`nonce="${nonce}"`) && scripts[0]!.includes('src="vscode-resource:/dist/similarity.js"'));
  assert.ok(html.includes('<title>a &#60;b&#62; &#38; &#34;c&#34;</title>'));
  assert.doesNotMatch(html, /https?:\/\//);
});
