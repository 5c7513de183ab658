// The page frame: escaping, the shared stylesheet (page.css, the same file
// `wpbackup report --html` includes) and the document around a page's body.

import css from "./page.css";

/// Text made safe inside HTML elements and quoted attributes.
export function esc(value) {
  return String(value ?? "")
    .replaceAll("&", "&amp;")
    .replaceAll("<", "&lt;")
    .replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;")
    .replaceAll("'", "&#39;");
}

/// A whole HTML document: no script, the stylesheet inline.
export function document(title, body) {
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>${esc(title)}</title>
<style>${css}</style></head>
<body><main>${body}</main></body></html>`;
}
