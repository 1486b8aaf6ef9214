/**
 * Where Chromium is and how the browser test launches it, and what the driver reports; kept
 * apart from `_browser_driver.ts` so that the test can read them without loading playwright-core
 * (which needs more permissions than the test task grants).
 *
 * @module
 */

/** What the driver measures of one page. */
export interface PageReport {
  file: string;
  title: string;
  /** The device names shown in the summary cards, as text. */
  cardDevices: string[];
  /** `<img>` elements in the page (the report has none; an injected one would show here). */
  images: number;
  consoleErrors: string[];
  pageErrors: string[];
  failedRequests: string[];
  /** The `data-charts-drawn` attribute the page's script sets when it is done. */
  chartsDrawn: number;
  figures: number;
  emptyFigures: number;
  canvases: { id: string; width: number; height: number; painted: number; colored: number }[];
  /** Set if an injected script or handler ran (the escaping tests plant `window.__pwned`). */
  pwned: unknown;
  /** What a reader sees: per chart, its legend and lines; per figure, its blank space. */
  readability: Readability;
}

/** The readability measurements of one page (see `browser_test.ts`). */
export interface Readability {
  charts: {
    id: string;
    /** Whether the canvas holds a Chart.js chart. */
    drawn: boolean;
    legend: { items: number; lines: number; belowPlot: boolean; insideCanvas: boolean } | null;
    datasets: { label: string; line: boolean; points: number; visiblePoints: number }[];
  }[];
  figures: { id: string; hasCanvas: boolean; blankBelow: number }[];
  /** Text length of every summary card, stat and headline paragraph. */
  cardTextLengths: number[];
  /** Elements outside scrolling panels that stick out of the page's main column. */
  overflowing: string[];
  pageOverflowsX: boolean;
  headline: string;
}

/** Chromium's location: `$CHROMIUM_PATH`, else Debian's package path. */
export const CHROMIUM_PATH: string = Deno.env.get("CHROMIUM_PATH") ?? "/usr/bin/chromium";

/** Chromium flags for a sandboxless, offline, quiet headless run. */
export const CHROMIUM_ARGS: string[] = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
