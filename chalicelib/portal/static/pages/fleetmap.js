// The fleet on an offline world map: Natural Earth outlines (vendored TopoJSON) drawn with d3-geo as SVG,
// devices at their public (0.01°) coordinates, clustered in screen space until zoomed in far enough.
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { geoNaturalEarth1, geoPath } from 'd3-geo';
import { get } from '../api.js';
import { html, number, words } from '../ui.js';

/** At most this many devices are drawn (5 pages of 1000); the legend says when there are more. */
export const MAP_CAP = 5000;
const PAGE = 1000;
const CELL = 44; // [px] devices whose screen positions share a grid cell of this size become one cluster
// One projection for every screen: the world fitted to BASE; the view {k, x, y} maps it into the box, so a
// resize (or a scrollbar coming and going) keeps what is shown instead of refitting it.
const BASE = [960, 500];
const projection = geoNaturalEarth1().fitSize(BASE, { type: 'Sphere' });
const MIN_K = 0.25;
const MAX_K = 4096; // devices 0.01° apart are then about 100 px apart: rounded positions always split
const DETAIL_K = 6; // from this zoom on (about 4× the world at 1280 px), 1:50m outlines replace 1:110m
const STEP = 2; // one +/− press or wheel notch series doubles or halves the scale
const PAN = 80; // [px] one arrow-key press

const vendored = (name) => new URL(`portal/vendor/${name}`, document.baseURI);
const outlines = {}; // resolution → Promise of GeoJSON features, fetched once per page load

function countries(resolution) {
  if (!outlines[resolution]) {
    outlines[resolution] = fetch(vendored(`countries-${resolution}.json`)).then((r) => {
      if (!r.ok) throw new Error(`countries-${resolution}.json answered ${r.status}`);
      return r.json();
    }).then((topology) => window.topojson.feature(topology, topology.objects.countries).features);
  }
  return outlines[resolution];
}

/** The devices of `filter`, page by page, up to MAP_CAP: {devices, more, error, loading}. */
function useFleet(filter) {
  const [state, setState] = useState({ devices: [], more: false, error: null, loading: true });
  const key = JSON.stringify(filter || {});
  useEffect(() => {
    let live = true;
    (async () => {
      const devices = [];
      let cursor = null;
      do {
        const body = await get('devices', { ...filter, limit: PAGE, cursor });
        devices.push(...(body.items || []));
        cursor = body.next_cursor;
      } while (cursor && devices.length < MAP_CAP);
      return { devices: devices.slice(0, MAP_CAP), more: Boolean(cursor) || devices.length > MAP_CAP };
    })().then((found) => live && setState({ ...found, error: null, loading: false }),
      (error) => live && setState({ devices: [], more: false, error, loading: false }));
    return () => { live = false; };
  }, [key]);
  return state;
}

// ---- colour: by status (what the viewer may see), by D-RECs issued, or by readings accepted

const STATUS = [
  ['suspended', 'suspended', '#b42318'],
  ['under_review', 'under review', '#c27803'],
  ['maintenance', 'maintenance note', '#5b6b7b'],
  ['active', 'active', '#1b6e3c'],
];
const statusOf = (d) => (d.status && d.status !== 'active' ? d.status : d.maintenance ? 'maintenance' : 'active');

const ACTIVITY = [
  [0, 'none', '#c9d3ce'], [1, '1–9', '#9ecae1'], [10, '10–99', '#4292c6'],
  [100, '100–999', '#08519c'], [1000, '1,000 or more', '#08306b'],
];
const activityBin = (n) => ACTIVITY.reduce((found, bin, i) => (n >= bin[0] ? i : found), 0);

/** Colour by a per-device count, in the ACTIVITY ranges; a cluster shows its devices' mean, so a large
 * cluster of idle devices does not look busy. */
const countMode = (label, field) => {
  const classOf = (n) => String(activityBin(n));
  return {
    label,
    classes: ACTIVITY.map(([, name, colour], i) => ({ id: String(i), label: name, colour })),
    classOf: (d) => classOf(d[field] || 0),
    clusterClass: (members) => classOf(members.reduce((sum, d) => sum + (d[field] || 0), 0) / members.length),
  };
};

const MODES = {
  status: {
    label: 'Status',
    classes: STATUS.map(([id, label, colour]) => ({ id, label, colour })),
    classOf: (d) => statusOf(d),
    // A cluster takes the most serious status among its devices (the order of STATUS).
    clusterClass: (members) => STATUS.find(([id]) => members.some((d) => statusOf(d) === id))[0],
  },
  drecs: countMode('D-RECs issued', 'drecs_issued'),
  readings: countMode('Readings accepted', 'readings_accepted'),
};

const describe = (d) => `${d.device_id} · ${words(d.device_type)} · ${number(d.capacity_w)} W · ${d.country}`
  + ` · ${words(statusOf(d))} · ${number(d.drecs_issued || 0)} D-RECs issued`
  + ` (${number((d.drec_energy_wh || 0) / 1000, 1)} kWh of its own) · ${number(d.readings_accepted || 0)} readings accepted`;

// ---- geometry: zoom and pan are one transform {k, x, y} over the projected world

function useWidth(ref) {
  const [width, setWidth] = useState(0);
  useEffect(() => {
    const measure = () => ref.current && setWidth(Math.floor(ref.current.getBoundingClientRect().width));
    measure();
    const observer = new ResizeObserver(measure);
    observer.observe(ref.current);
    return () => observer.disconnect();
  }, []);
  return width;
}

const clampK = (k) => Math.min(MAX_K, Math.max(MIN_K, k));

/** The whole world, centred in the box. */
function worldView(width, height) {
  const k = clampK(Math.min(width / BASE[0], height / BASE[1]));
  return { k, x: (width - k * BASE[0]) / 2, y: (height - k * BASE[1]) / 2 };
}

/** The view that shows `points` ([x, y] projected at k = 1) with a margin, or the whole world. */
function fitView(points, width, height) {
  if (!points.length) return worldView(width, height);
  const xs = points.map((p) => p[0]);
  const ys = points.map((p) => p[1]);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const margin = 0.75;
  const k = clampK(Math.min(x1 - x0 > 0 ? (margin * width) / (x1 - x0) : MAX_K,
    y1 - y0 > 0 ? (margin * height) / (y1 - y0) : MAX_K, points.length === 1 ? 32 : MAX_K));
  return { k, x: width / 2 - (k * (x0 + x1)) / 2, y: height / 2 - (k * (y0 + y1)) / 2 };
}

/** Zoom by `factor` keeping the screen point (px, py) where it is. */
function zoomAt(view, factor, px, py) {
  const k = clampK(view.k * factor);
  return { k, x: px - ((px - view.x) * k) / view.k, y: py - ((py - view.y) * k) / view.k };
}

/** Devices grouped by screen grid cell; each group sits at its members' mean position. Off-screen ones are left out. */
function cluster(placed, view, width, height) {
  const cells = new Map();
  for (const p of placed) {
    const sx = view.x + view.k * p.x;
    const sy = view.y + view.k * p.y;
    if (sx < -CELL || sy < -CELL || sx > width + CELL || sy > height + CELL) continue;
    const key = `${Math.floor(sx / CELL)},${Math.floor(sy / CELL)}`;
    const cell = cells.get(key) || { members: [], sx: 0, sy: 0 };
    cell.members.push(p);
    cell.sx += sx;
    cell.sy += sy;
    cells.set(key, cell);
  }
  return [...cells.values()].map((c) => ({ ...c, sx: c.sx / c.members.length, sy: c.sy / c.members.length }));
}

export function FleetMap({ filter }) {
  const fleet = useFleet(filter);
  const box = useRef(null);
  const svg = useRef(null);
  const width = useWidth(box);
  const height = Math.round(Math.min(520, Math.max(240, width * 0.55)));
  const [mode, setMode] = useState('status');
  const [view, setView] = useState(null);
  const [world, setWorld] = useState({ resolution: null, features: [] });
  const [stack, setStack] = useState(null); // devices at one spot that no zoom can split, listed below
  const [failure, setFailure] = useState(null);
  const drag = useRef(null);

  const placed = useMemo(() => fleet.devices.map((d) => {
    const [x, y] = projection([Number(d.longitude), Number(d.latitude)]) || [NaN, NaN];
    return { d, x, y };
  }).filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y)), [fleet.devices]);
  const fit = () => fitView(placed.map((p) => [p.x, p.y]), width, height);

  // Fit to the devices once they are loaded and the box is measured; the outlines follow the zoom.
  useEffect(() => { if (width && !fleet.loading) { setView(fit()); setStack(null); } }, [placed, width > 0, fleet.loading]);
  const resolution = view && view.k >= DETAIL_K ? '50m' : '110m';
  useEffect(() => {
    let live = true;
    countries(resolution).then((features) => live && setWorld({ resolution, features }),
      (error) => live && setFailure(error));
    return () => { live = false; };
  }, [resolution]);
  const paths = useMemo(() => {
    const path = geoPath(projection);
    return world.features.map((f) => ({ id: f.id, name: f.properties && f.properties.name, d: path(f) }));
  }, [world]);

  // The wheel needs a non-passive listener to keep the page from scrolling while zooming.
  useEffect(() => {
    const element = svg.current;
    if (!element) return undefined;
    const wheel = (event) => {
      event.preventDefault();
      const rect = element.getBoundingClientRect();
      const factor = Math.pow(2, -event.deltaY / (event.deltaMode === 1 ? 8 : 240));
      setView((v) => v && zoomAt(v, factor, event.clientX - rect.left, event.clientY - rect.top));
    };
    element.addEventListener('wheel', wheel, { passive: false });
    return () => element.removeEventListener('wheel', wheel);
  }, [width > 0]);

  if (fleet.error) return html`<p class="error" role="alert">The map could not load the devices: ${fleet.error.message}</p>`;
  const scheme = MODES[mode];
  const clusters = view && width ? cluster(placed, view, width, height) : [];
  const zoomBy = (factor) => setView((v) => v && zoomAt(v, factor, width / 2, height / 2));
  const pan = (dx, dy) => setView((v) => v && { ...v, x: v.x + dx, y: v.y + dy });

  const openCluster = (c) => {
    const points = c.members.map((p) => [p.x, p.y]);
    const spread = Math.max(...points.map((p) => p[0])) - Math.min(...points.map((p) => p[0]))
      + Math.max(...points.map((p) => p[1])) - Math.min(...points.map((p) => p[1]));
    if (spread * MAX_K < 1 || view.k >= MAX_K) { setStack(c.members.map((p) => p.d)); return; }
    const next = fitView(points, width, height);
    // At least double: a cluster always comes apart a little, even when its members span the box already.
    setView(next.k >= view.k * STEP ? next : zoomAt(view, STEP, c.sx, c.sy));
  };

  const down = (event) => {
    if (event.button !== 0 || event.target.closest('a, [role=button]')) return;
    drag.current = { id: event.pointerId, x: event.clientX, y: event.clientY };
    event.currentTarget.setPointerCapture(event.pointerId);
  };
  const move = (event) => {
    const d = drag.current;
    if (!d || d.id !== event.pointerId) return;
    const [dx, dy] = [event.clientX - d.x, event.clientY - d.y];
    drag.current = { ...d, x: event.clientX, y: event.clientY };
    pan(dx, dy);
  };
  const up = () => { drag.current = null; };
  const keys = (event) => {
    const moves = { ArrowLeft: [PAN, 0], ArrowRight: [-PAN, 0], ArrowUp: [0, PAN], ArrowDown: [0, -PAN] };
    if (event.target !== svg.current) return;
    if (moves[event.key]) { event.preventDefault(); pan(...moves[event.key]); }
    else if (event.key === '+' || event.key === '=') { event.preventDefault(); zoomBy(STEP); }
    else if (event.key === '-') { event.preventDefault(); zoomBy(1 / STEP); }
  };

  const counts = {};
  for (const p of placed) counts[scheme.classOf(p.d)] = (counts[scheme.classOf(p.d)] || 0) + 1;
  const colour = Object.fromEntries(scheme.classes.map((c) => [c.id, c.colour]));
  const shown = fleet.devices.length;

  return html`<figure class="fleet" aria-labelledby="fleet-caption">
    <div class="fleet-tools" role="group" aria-label="map controls">
      <button type="button" class="secondary" id="fleet-zoom-in" aria-label="Zoom in" onClick=${() => zoomBy(STEP)}>+</button>
      <button type="button" class="secondary" id="fleet-zoom-out" aria-label="Zoom out" onClick=${() => zoomBy(1 / STEP)}>−</button>
      <button type="button" class="secondary" id="fleet-fit" onClick=${() => { setView(fit()); setStack(null); }}>Fit to devices</button>
      <button type="button" class="secondary" id="fleet-world" onClick=${() => setView(worldView(width, height))}>World</button>
      <fieldset class="fleet-mode"><legend>Colour by</legend>
        ${Object.entries(MODES).map(([id, m]) => html`<label><input type="radio" name="fleet-mode" value=${id}
          checked=${mode === id} onChange=${() => setMode(id)} /> ${m.label}</label>`)}
      </fieldset>
    </div>
    <div class="fleet-box" ref=${box}>
      ${width ? html`<svg ref=${svg} class="fleet-map" width=${width} height=${height} viewBox=${`0 0 ${width} ${height}`}
        tabindex="0" role="group" aria-roledescription="map" data-k=${view ? view.k : ''}
        aria-label=${`Map of ${shown} devices; arrow keys pan, + and − zoom; Tab reaches each device or cluster`}
        onPointerDown=${down} onPointerMove=${move} onPointerUp=${up} onPointerCancel=${up} onKeyDown=${keys}>
        <rect class="sea" width=${width} height=${height} />
        ${view ? html`<g class="countries" data-resolution=${world.resolution}
          transform=${`translate(${view.x},${view.y}) scale(${view.k})`}>
          ${paths.map((p) => html`<path key=${p.id || p.name} class="country" d=${p.d}><title>${p.name}</title></path>`)}
        </g>` : null}
        ${clusters.map((c) => (c.members.length === 1
          ? html`<a key=${c.members[0].d.device_id} class="marker" href=${`#/devices/${encodeURIComponent(c.members[0].d.device_id)}`}
              data-device=${c.members[0].d.device_id} aria-label=${describe(c.members[0].d)}>
              <title>${describe(c.members[0].d)}</title>
              <circle cx=${c.sx} cy=${c.sy} r="7" fill=${colour[scheme.classOf(c.members[0].d)]} />
            </a>`
          : html`<g key=${`${c.members[0].d.device_id}+${c.members.length}`} class="cluster" role="button" tabindex="0"
              data-count=${c.members.length} aria-label=${`${c.members.length} devices here; zoom in`}
              onClick=${() => openCluster(c)}
              onKeyDown=${(e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); openCluster(c); } }}>
              <title>${c.members.length} devices (${c.members.map((p) => p.d.country).filter((v, i, a) => a.indexOf(v) === i).join(', ')}); click to zoom in</title>
              <circle cx=${c.sx} cy=${c.sy} r=${Math.min(30, 11 + 4 * Math.log2(c.members.length))}
                fill=${colour[scheme.clusterClass(c.members.map((p) => p.d))]} />
              <text x=${c.sx} y=${c.sy} dy="0.35em">${number(c.members.length)}</text>
            </g>`))}
      </svg>` : null}
    </div>
    <figcaption id="fleet-caption">
      ${fleet.loading ? 'Loading devices…' : html`<span id="fleet-shown">${number(shown)}</span>${
        shown === 1 ? ' device' : ' devices'} at their public positions (rounded to 0.01°, about 1 km)${fleet.more
          ? html`; <strong>showing the first ${number(MAP_CAP)}</strong>, narrow the filters to see the rest` : ''}.
        Outlines: Natural Earth 1:${resolution}, offline.`}
    </figcaption>
    <ul class="fleet-legend" id="fleet-legend" aria-label=${`legend: ${scheme.label.toLowerCase()}`}>
      ${scheme.classes.map((c) => html`<li data-class=${c.id}><span class="swatch" style=${`background:${c.colour}`}></span>
        ${c.label}: <strong>${number(counts[c.id] || 0)}</strong></li>`)}
      <li class="note">${mode === 'status' ? 'A cluster takes the most serious status among its devices.'
        : mode === 'drecs' ? 'D-RECs the device\u2019s Wh went into (each pools many devices); a cluster shows its devices\u2019 mean.'
          : 'Daylight readings the validator accepted; a cluster shows its devices\u2019 mean.'}</li>
    </ul>
    ${stack ? html`<div class="fleet-stack" id="fleet-stack" role="region" aria-label="devices at one spot">
      <p>${stack.length} devices share this rounded position:</p>
      <ul>${stack.map((d) => html`<li><a href=${`#/devices/${encodeURIComponent(d.device_id)}`}>${d.device_id}</a>
        (${words(d.device_type)}, ${number(d.capacity_w)} W, ${d.country})</li>`)}</ul>
      <button type="button" class="secondary" onClick=${() => setStack(null)}>Close</button>
    </div>` : null}
    ${failure ? html`<p class="error" role="alert">The map outlines could not load: ${failure.message}</p>` : null}
  </figure>`;
}
