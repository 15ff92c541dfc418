// Bar charts drawn from data as SVG elements: no image files, and no markup
// parsed from strings (labels are text nodes and attribute values, as in
// dom.js). Each chart is an image for assistive technology, with its
// figures in a table beside it.
const NS = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [name, value] of Object.entries(attrs)) el.setAttribute(name, String(value));
  el.append(...children);
  return el;
}

/**
 * A bar per point (`[{label, value}]`, in order), scaled to the largest.
 * `format(value)` writes a value for people. Each bar carries its label and
 * value as `data-label` and `data-value`, and says them in its tooltip.
 */
export function barChart(points, { title, format, width = 640, height = 180 }) {
  const pad = { left: 8, right: 8, top: 18, bottom: 22 };
  const max = Math.max(0, ...points.map((p) => p.value));
  const slot = (width - pad.left - pad.right) / Math.max(points.length, 1);
  const room = height - pad.top - pad.bottom;
  const total = points.reduce((sum, p) => sum + p.value, 0);
  const chart = svg("svg", {
    viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img",
    "aria-label": `${title}: ${format(total)} in all, at most ${format(max)} a day`,
  }, svg("title", {}, title));
  points.forEach((p, i) => {
    const h = max > 0 ? (p.value / max) * room : 0;
    chart.append(svg("rect", {
      class: "bar", x: pad.left + i * slot + slot * 0.1, y: height - pad.bottom - h,
      width: slot * 0.8, height: h, "data-label": p.label, "data-value": p.value,
    }, svg("title", {}, `${p.label}: ${format(p.value)}`)));
  });
  // The first, middle and last labels under the bars; the scale above them.
  for (const i of new Set([0, Math.floor((points.length - 1) / 2), points.length - 1])) {
    if (!points[i]) continue;
    chart.append(svg("text", { class: "axis", x: pad.left + (i + 0.5) * slot, y: height - 6, "text-anchor": "middle" }, points[i].label));
  }
  chart.append(svg("text", { class: "axis", x: width - pad.right, y: 12, "text-anchor": "end" }, `max ${format(max)}`));
  return chart;
}
