// Builds DOM nodes without ever parsing markup: every string becomes a text
// node or an attribute value, so nothing a user or token controls can turn
// into elements. The pages use this instead of innerHTML and its kin
// (`make test` fails on those; see tests/browser/sinks.test.mjs).

/**
 * `h("p", {class: "hint"}, "text", child)`: an element with attributes and
 * children. Strings are text. `class` sets className; `true` sets a
 * boolean attribute; null, undefined and false are left out.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value == null || value === false) continue;
    // Event handler attributes would be code; listeners are added in JS.
    if (/^on/i.test(name)) throw new TypeError(`h(): no ${name} attributes`);
    if (name === "class") el.className = value;
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  el.append(...children.flat().filter((c) => c != null && c !== false));
  return el;
}
