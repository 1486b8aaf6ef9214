// The report page's script: reads the chart specifications that reports/_charts.ts computed
// (from <script type="application/json" id="attnbench-data">) and hands them to Chart.js, then
// makes the tables sortable. Inlined into the page as a classic script after Chart.js; it has
// no logic of its own beyond axis ticks and tooltips.
(() => {
  "use strict";

  /** Significant-digit formatting, as fmtNum in reports/_format.ts. */
  const num = (x, sig = 3) => {
    if (!Number.isFinite(x)) return String(x);
    if (x === 0) return "0";
    const a = Math.abs(x);
    if (a >= 1e6 || a < 1e-3) return x.toExponential(sig - 1).replace(/\.?0+e/, "e");
    if (a >= 10 ** sig) return String(Math.round(x));
    return String(Number(x.toPrecision(sig)));
  };

  const scaled = (v, base, units) => {
    let i = 0;
    while (Math.abs(v) >= base && i < units.length - 1) {
      v /= base;
      i++;
    }
    return `${num(v)} ${units[i]}`;
  };

  const tick = (v, unit) => {
    switch (unit) {
      case "ms":
        if (v > 0 && v < 1) return `${num(v * 1e3)} µs`;
        if (v >= 1000) return `${num(v / 1e3)} s`;
        return `${num(v)} ms`;
      case "bytes":
        return scaled(v, 1000, ["B", "kB", "MB", "GB", "TB", "PB", "EB"]);
      case "mem":
        return scaled(v, 1024, ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]);
      case "ratio":
        return `${num(v)}×`;
      case "flops":
        return scaled(v, 1000, ["", "k", "M", "G", "T", "P", "E"]).trimEnd();
      default:
        return num(v);
    }
  };

  /** Tick values of a log axis: powers of two, or decades (with 2 and 5 on short ranges). */
  const logTicks = (min, max, pow2) => {
    if (pow2) {
      const lo = Math.ceil(Math.log2(min));
      const hi = Math.floor(Math.log2(max));
      const step = Math.max(1, Math.ceil((hi - lo + 1) / 9));
      const out = [];
      for (let e = lo; e <= hi; e++) if (e % step === 0) out.push(2 ** e);
      return out.length >= 2 ? out : [min, max];
    }
    const steps = [[1], [1, 2, 5], [1, 2, 3, 4, 5, 6, 7, 8, 9]];
    const decades = Math.log10(max / min);
    let out = [];
    for (let s = decades > 2.5 ? 0 : 1; s < steps.length; s++) {
      out = [];
      for (let e = Math.floor(Math.log10(min)); e <= Math.ceil(Math.log10(max)); e++) {
        for (const m of steps[s]) {
          const v = Number((m * 10 ** e).toPrecision(6));
          if (v >= min * 0.9999 && v <= max * 1.0001) out.push(v);
        }
      }
      if (out.length >= 3) break;
    }
    return out.length >= 2 ? out : [min, max];
  };

  /** Explicit bounds with some padding, so log axes neither snap to decades nor clip points. */
  const axisRange = (spec, values) => {
    if (spec.scale === "linear") return { min: spec.min, max: spec.max };
    const pos = values.filter((v) => Number.isFinite(v) && v > 0);
    if (pos.length === 0) return {};
    const lo = Math.min(...pos);
    const hi = Math.max(...pos);
    const pad = lo === hi ? 2 : spec.scale === "log2" ? 1.3 : 1.5;
    return { min: spec.min ?? lo / pad, max: spec.max ?? hi * pad };
  };

  const axis = (spec, position, values, grid) => {
    const range = axisRange(spec, values);
    const log = spec.scale !== "linear";
    const opts = {
      type: log ? "logarithmic" : "linear",
      position,
      title: { display: true, text: spec.title, font: { weight: "600" } },
      grid: { display: grid, color: "#e6e9ee" },
      border: { color: "#c5cad3" },
      ticks: { maxRotation: 0, autoSkip: !log, callback: (v) => tick(Number(v), spec.unit) },
    };
    if (range.min !== undefined) opts.min = range.min;
    if (range.max !== undefined) opts.max = range.max;
    if (!log && spec.min === undefined) opts.beginAtZero = true;
    if (log) {
      opts.afterBuildTicks = (scale) => {
        const pow2 = spec.scale === "log2" || spec.unit === "mem";
        scale.ticks = logTicks(scale.min, scale.max, pow2).map((value) => ({ value }));
      };
    }
    return opts;
  };

  const dataset = (s) => ({
    label: s.label,
    data: s.points,
    yAxisID: s.axis,
    showLine: s.line,
    borderColor: s.color,
    backgroundColor: s.color,
    borderDash: s.dash,
    borderWidth: s.light ? 1.5 : s.line ? 2 : 2.5,
    pointStyle: s.radius === 0 ? "line" : s.marker,
    pointRadius: s.radius,
    pointHoverRadius: s.radius + 3,
    pointHitRadius: 6,
    tension: 0,
    fill: false,
    clip: false,
    order: s.light ? 1 : 0,
  });

  /** Draws each point's whisker (`lo`…`hi`, the spread of its samples) as a capped bar. */
  const whiskers = {
    id: "attnbenchWhiskers",
    afterDatasetsDraw(chart) {
      const ctx = chart.ctx;
      chart.data.datasets.forEach((ds, i) => {
        if (!chart.isDatasetVisible(i)) return;
        const meta = chart.getDatasetMeta(i);
        const scale = chart.scales[ds.yAxisID];
        if (!scale) return;
        ctx.save();
        ctx.strokeStyle = ds.borderColor;
        ctx.lineWidth = 1.5;
        ctx.setLineDash([]);
        ds.data.forEach((p, j) => {
          const el = meta.data[j];
          if (!el || typeof p.lo !== "number" || typeof p.hi !== "number") return;
          const top = scale.getPixelForValue(p.hi);
          const bottom = scale.getPixelForValue(p.lo);
          if (!Number.isFinite(top) || !Number.isFinite(bottom)) return;
          ctx.beginPath();
          ctx.moveTo(el.x, top);
          ctx.lineTo(el.x, bottom);
          ctx.moveTo(el.x - 4, top);
          ctx.lineTo(el.x + 4, top);
          ctx.moveTo(el.x - 4, bottom);
          ctx.lineTo(el.x + 4, bottom);
          ctx.stroke();
        });
        ctx.restore();
      });
    },
  };

  const ICON_W = 30;

  /** A legend icon: a short line in the item's dash (if it is a line) with its marker. */
  const icon = (item) => {
    const c = document.createElement("canvas");
    c.width = ICON_W;
    c.height = 14;
    const ctx = c.getContext("2d");
    if (!ctx) return "circle";
    ctx.strokeStyle = item.color;
    ctx.fillStyle = item.color;
    ctx.lineWidth = 2;
    const y = 7;
    const x = ICON_W / 2;
    if (item.line) {
      ctx.setLineDash(item.dash);
      ctx.beginPath();
      ctx.moveTo(1, y);
      ctx.lineTo(ICON_W - 1, y);
      ctx.stroke();
      ctx.setLineDash([]);
    }
    const r = 4;
    ctx.beginPath();
    switch (item.marker) {
      case "triangle":
        ctx.moveTo(x, y - r);
        ctx.lineTo(x + r, y + r);
        ctx.lineTo(x - r, y + r);
        ctx.closePath();
        ctx.fill();
        break;
      case "rect":
        ctx.fillRect(x - r + 1, y - r + 1, 2 * r - 2, 2 * r - 2);
        break;
      case "rectRot":
        ctx.moveTo(x, y - r);
        ctx.lineTo(x + r, y);
        ctx.lineTo(x, y + r);
        ctx.lineTo(x - r, y);
        ctx.closePath();
        ctx.fill();
        break;
      case "crossRot":
      case "cross":
      case "star": {
        const d = item.marker === "cross" ? 0 : r;
        ctx.moveTo(x - d, y - r);
        ctx.lineTo(x + d, y + r);
        ctx.moveTo(x - r, y + d);
        ctx.lineTo(x + r, y - d);
        if (item.marker === "star") {
          ctx.moveTo(x, y - r);
          ctx.lineTo(x, y + r);
        }
        ctx.stroke();
        break;
      }
      default:
        if (item.line && item.dash.length > 0) break; // a reference line: no marker
        ctx.arc(x, y, r - 0.5, 0, 2 * Math.PI);
        ctx.fill();
    }
    return c;
  };
  /** The chart's own legend (a few entries: colours, then line styles) as Chart.js items. */
  const legendItems = (spec) => {
    const icons = spec.legend.map(icon);
    return (chart) =>
      spec.legend.map((item, index) => ({
        text: item.label,
        fillStyle: item.color,
        strokeStyle: item.color,
        lineWidth: 0,
        pointStyle: icons[index],
        hidden: item.series.every((i) => !chart.isDatasetVisible(i)),
        fontColor: "#3b4350",
        index,
      }));
  };

  const toggle = (spec) => (_event, item, legend) => {
    const chart = legend.chart;
    const entry = spec.legend[item.index];
    if (!entry) return;
    const show = entry.series.every((i) => !chart.isDatasetVisible(i));
    for (const i of entry.series) chart.setDatasetVisibility(i, show);
    chart.update();
  };

  /** The values an axis must show: x or y of the points, and for y the whiskers' ends. */
  const values = (series, axisId, key) =>
    series.filter((s) => axisId === null || s.axis === axisId)
      .flatMap((s) => s.points.flatMap((p) => key === "y" ? [p.y, p.lo, p.hi] : [p.x]))
      .filter((v) => typeof v === "number");

  /** Grows the chart's box by the height its legend will take, so the plot keeps its size. */
  const fitLegend = (wrap, items) => {
    const ctx = document.createElement("canvas").getContext("2d");
    if (!wrap || !ctx) return;
    ctx.font = `12px ${Chart.defaults.font.family}`;
    const width = wrap.clientWidth - 20;
    let lines = 1;
    let used = 0;
    for (const s of items) {
      const w = ctx.measureText(s.label).width + 44;
      if (used > 0 && used + w > width) {
        lines++;
        used = 0;
      }
      used += w;
    }
    wrap.style.height = `${300 + 24 * lines}px`;
  };

  const draw = (spec) => {
    const canvas = document.getElementById(`chart-${spec.id}`);
    if (!canvas || spec.series.length === 0) return null;
    fitLegend(canvas.parentElement, spec.legend);
    const scales = {
      x: axis(spec.x, "bottom", values(spec.series, null, "x"), true),
      y: axis(spec.y, "left", values(spec.series, "y", "y"), true),
    };
    if (spec.y2) scales.y2 = axis(spec.y2, "right", values(spec.series, "y2", "y"), false);
    return new Chart(canvas, {
      type: "scatter",
      data: { datasets: spec.series.map(dataset) },
      plugins: [whiskers],
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        interaction: { mode: "nearest", intersect: false },
        scales,
        plugins: {
          legend: {
            position: "bottom",
            onClick: toggle(spec),
            labels: {
              usePointStyle: true,
              pointStyleWidth: ICON_W,
              boxHeight: 12,
              padding: 12,
              generateLabels: legendItems(spec),
            },
          },
          tooltip: {
            callbacks: {
              title: (items) => (items.length > 0 ? items[0].dataset.label : ""),
              label: (item) => String(item.raw?.tip ?? "").split("\n"),
            },
          },
        },
      },
    });
  };

  /** Click-to-sort; a table with several <tbody> (a run and its detail row) sorts them whole. */
  const sortable = (table) => {
    const heads = table.querySelectorAll("thead th");
    heads.forEach((th, col) => {
      th.addEventListener("click", () => {
        const dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
        heads.forEach((h) => h.removeAttribute("aria-sort"));
        th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
        const grouped = table.tBodies.length > 1;
        const items = grouped ? [...table.tBodies] : [...table.tBodies[0].rows];
        const parent = grouped ? table : table.tBodies[0];
        const key = (item) => {
          const cell = (grouped ? item.rows[0] : item)?.cells[col];
          if (!cell) return "";
          const v = cell.getAttribute("data-v");
          return v !== null && v !== "" && !Number.isNaN(Number(v)) ? Number(v) : cell.textContent;
        };
        items.sort((a, b) => {
          const x = key(a);
          const y = key(b);
          if (typeof x === "number" && typeof y === "number") return (x - y) * dir;
          if (typeof x === "number") return -1;
          if (typeof y === "number") return 1;
          return String(x).localeCompare(String(y)) * dir;
        });
        items.forEach((item) => parent.appendChild(item));
      });
    });
  };

  const data = JSON.parse(document.getElementById("attnbench-data").textContent);
  Chart.defaults.font.family =
    'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif';
  Chart.defaults.font.size = 12;
  Chart.defaults.color = "#3b4350";
  let drawn = 0;
  for (const spec of data.charts) {
    try {
      if (draw(spec)) drawn++;
    } catch (e) {
      document.getElementById(`figure-${spec.id}`)?.classList.add("broken");
      console.error(`chart ${spec.id} failed: ${e?.stack ?? e}`);
    }
  }
  document.querySelectorAll("table.sortable").forEach(sortable);
  document.documentElement.setAttribute("data-charts-drawn", String(drawn));
})();
