// A small SVG line chart of one value per second, with a time axis and a scale.

const SVG = "http://www.w3.org/2000/svg";

function svgElement(tag, attributes, text) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
  if (text !== undefined) element.textContent = text;
  return element;
}

// A "nice" top for the scale (1, 2, 5, 10, 20, 50, …) at or above the largest value.
export function niceTop(largest) {
  let top = 1;
  for (let decade = 1; top < largest; decade *= 10) {
    top = [1, 2, 5].map((f) => f * decade).find((v) => v >= largest) ?? 10 * decade;
  }
  return top;
}

// `values` are the last samples, one per second, oldest first; `span` is how many seconds the
// time axis shows. The y axis is labelled 0, half and top; the x axis in seconds before now.
export function rateChart(values, span, label) {
  const width = 300;
  const height = 110;
  const left = 30; const right = 8; const top = 8; const bottom = 22;
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  const max = niceTop(Math.max(0, ...values));
  const x = (secondsAgo) => left + plotW * (1 - secondsAgo / (span - 1));
  const y = (value) => top + plotH * (1 - value / max);
  const svg = svgElement("svg", {
    viewBox: `0 0 ${width} ${height}`, width: "100%", class: "chart", role: "img",
    "aria-label": `${label}: latest ${values.at(-1) ?? 0}, peak ${Math.max(0, ...values)}, over the last ${span} s`,
  });
  const yAxis = svgElement("g", { class: "y-axis" });
  for (const tick of [0, max / 2, max]) {
    yAxis.append(
      svgElement("line", { x1: left, x2: width - right, y1: y(tick), y2: y(tick), class: tick ? "grid" : "axis" }),
      svgElement("text", { x: left - 4, y: y(tick) + 3, "text-anchor": "end" }, Number.isInteger(tick) ? tick : tick.toFixed(1)));
  }
  const xAxis = svgElement("g", { class: "x-axis" });
  for (const secondsAgo of [span - 1, Math.round((span - 1) / 2), 0]) {
    xAxis.append(
      svgElement("line", { x1: x(secondsAgo), x2: x(secondsAgo), y1: top + plotH, y2: top + plotH + 4, class: "axis" }),
      svgElement("text", { x: x(secondsAgo), y: height - 6, "text-anchor": secondsAgo ? (secondsAgo === span - 1 ? "start" : "middle") : "end" },
        secondsAgo ? `−${secondsAgo} s` : "now"));
  }
  const points = values.map((v, i) => `${x(values.length - 1 - i)},${y(v)}`).join(" ");
  svg.append(yAxis, xAxis, svgElement("polyline", { points, class: "series" }));
  return svg;
}
