// No page parses markup from strings: the HTML sinks are banned outright in
// public/ (every page builds DOM nodes with textContent or dom.js's h()).
// A sink with only a literal today takes an interpolated value tomorrow, so
// the check does not try to tell the two apart.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { root } from "./support.mjs";

const SINKS = [
  [/\.(innerHTML|outerHTML)\s*\+?=(?!=)/, "innerHTML/outerHTML assignment"],
  [/\binsertAdjacentHTML\s*\(/, "insertAdjacentHTML"],
  [/\bdocument\s*\.\s*write(ln)?\s*\(/, "document.write"],
  [/\.srcdoc\s*=(?!=)/, "iframe srcdoc"],
  [/\bcreateContextualFragment\s*\(/, "Range.createContextualFragment"],
  [/\bparseFromString\s*\(/, "DOMParser.parseFromString"],
  [/\bsetHTML(Unsafe)?\s*\(/, "setHTML / setHTMLUnsafe"],
  [/\bon[a-z]+\s*=\s*["'`]/i, "inline event handler markup"],
];

/** Every line of `source` that uses a sink, as "line: what". */
export function sinks(source) {
  const found = [];
  source.split("\n").forEach((line, i) => {
    const code = line.replace(/\/\/.*$/, "");
    for (const [re, what] of SINKS) if (re.test(code)) found.push(`${i + 1}: ${what}`);
  });
  return found;
}

test("the checker finds each kind of sink", () => {
  const bad = [
    "root.innerHTML = `<p>${me.name}</p>`;",
    "el.outerHTML += x;",
    'el.insertAdjacentHTML("beforeend", html);',
    "document.write(x);",
    "frame.srcdoc = page;",
    "range.createContextualFragment(s);",
    'new DOMParser().parseFromString(s, "text/html");',
    "el.setHTMLUnsafe(s);",
    '<img src=x onerror="alert(1)">',
  ];
  for (const line of bad) assert.equal(sinks(line).length, 1, line);
  for (const ok of ["el.textContent = name;", "if (a.innerHTML === b) f();", "// no innerHTML = here"]) {
    assert.deepEqual(sinks(ok), [], ok);
  }
});

test("no page in public/ uses an HTML sink", () => {
  const dir = path.join(root, "public");
  const files = fs.readdirSync(dir).filter((f) => /\.(m?js|html)$/.test(f));
  assert.ok(files.includes("admin.js") && files.includes("index.html"), files.join(", "));
  const found = files.flatMap((f) => sinks(fs.readFileSync(path.join(dir, f), "utf8")).map((s) => `${f}:${s}`));
  assert.deepEqual(found, []);
});
