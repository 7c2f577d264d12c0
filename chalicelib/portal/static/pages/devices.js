// Devices: list with filters and a map of the fleet, registration with the API's field errors, a device's readings.
import { useState } from 'preact/hooks';
import { can, get, post } from '../api.js';
import {
  Definitions, DEVICE_TYPES, ErrorBox, Filters, Form, html, Link, Loading, NeedsKey, number, OFFTAKER_TYPES,
  Table, typed, useAsync, usePaged, wh, words,
} from '../ui.js';
import { FleetMap } from './fleetmap.js';
import { ReadingsTable, statusBadge, useDecision } from './readings.js';

const DEVICE_FIELDS = [
  { name: 'owner_account_id', label: 'Owner account id', required: true },
  { name: 'device_type', label: 'Device type', type: 'select', options: DEVICE_TYPES, required: true },
  { name: 'capacity_w', label: 'Nameplate capacity [W]', type: 'number', step: 'any', required: true },
  { name: 'latitude', label: 'Latitude [deg]', type: 'number', step: 'any', required: true, hint: '−90 to 90' },
  { name: 'longitude', label: 'Longitude [deg]', type: 'number', step: 'any', required: true, hint: '−180 to 180' },
  { name: 'country', label: 'Country', required: true, placeholder: 'KE', hint: 'ISO 3166-1 alpha-2' },
  { name: 'commissioning_date', label: 'Commissioning date', type: 'date', required: true },
  { name: 'offtaker_type', label: 'Off-taker type', type: 'select', options: OFFTAKER_TYPES, required: true },
  { name: 'grid_connected', label: 'Grid connected', type: 'checkbox' },
  { name: 'external_id', label: 'External id' },
  { name: 'tilt_deg', label: 'Tilt [deg from horizontal]', type: 'number', step: 'any' },
  { name: 'azimuth_deg', label: 'Azimuth [deg, 180 = south]', type: 'number', step: 'any' },
  { name: 'battery_wh', label: 'Battery [Wh]', type: 'number', step: 'any' },
];

const osm = (d) => `https://www.openstreetmap.org/?mlat=${d.latitude}&mlon=${d.longitude}#map=12/${d.latitude}/${d.longitude}`;

// The API gives exact coordinates (and the salt of their commitment) only to the owner's side; everyone
// else gets them rounded to 0.01°, which is shown as approximate rather than passed off as a position.
const exact = (d) => Boolean(d.location_salt);

export const coordinates = (d) => html`<a href=${osm(d)} rel="noopener" target="_blank"
  title=${exact(d) ? 'open the location on OpenStreetMap' : 'rounded to 0.01° (about 1 km) for privacy; open the area on OpenStreetMap'}
  >${exact(d) ? '' : '≈ '}${number(d.latitude, 6)}, ${number(d.longitude, 6)}</a>`;

export function Devices({ query, session }) {
  const [filter, setFilter] = useState(query || {});
  const list = usePaged('devices', filter);
  const initial = session.role === 'account' && session.id ? { owner_account_id: session.id } : {};
  return html`<h1>Devices</h1>
    <section aria-labelledby="devices-list">
      <h2 id="devices-list">Registered devices</h2>
      <${Filters} id="device-filters" value=${filter} onApply=${setFilter} specs=${[
        { name: 'owner_account_id', label: 'Owner account id' }, { name: 'country', label: 'Country', placeholder: 'KE' },
        { name: 'device_type', label: 'Device type', type: 'select', options: DEVICE_TYPES, any: 'any type' }]} />
      <h3 id="fleet-title">Map of the fleet</h3>
      <${FleetMap} filter=${filter} />
      <${Loading} state=${list}>
        <${Table} caption="Devices" rows=${list.items} columns=${[
          { label: 'Device', render: (d) => html`<${Link} href=${`devices/${d.device_id}`}>${d.device_id}</${Link}>` },
          { label: 'Owner', render: (d) => html`<${Link} href=${`accounts/${d.owner_account_id}`}>${d.owner_account_id}</${Link}>` },
          { label: 'Type', render: (d) => words(d.device_type) }, { label: 'Capacity', render: (d) => `${number(d.capacity_w)} W` },
          { key: 'country', label: 'Country' }, { label: 'Location', render: coordinates },
          { label: 'Status', render: (d) => statusBadge(d.status || 'active') }]} />
        ${list.pager}
      <//>
    </section>
    <section aria-labelledby="device-register">
      <h2 id="device-register">Register a device</h2>
      ${can('register_device', session) ? html`<${Form} id="device-form" specs=${DEVICE_FIELDS} initial=${initial}
        submitLabel="Register device"
        onSubmit=${async (values) => { const done = await post('devices', typed(DEVICE_FIELDS, values));
          list.reload(); return done; }}
        result=${(d) => html`<p>Device <strong><${Link} href=${`devices/${d.device_id}`}>${d.device_id}</${Link}></strong>
          registered at ${coordinates(d)}.</p>`} />`
        : html`<${NeedsKey} action="register devices (the operator, a source or the owner account)" />`}
    </section>`;
}

const REFERENCE_TEXT = { peers: 'its neighbours', climatology: 'the climatology of its place' };

const figure = (value, digits = 2) => (value === null || value === undefined ? null : number(value, digits));

/** Why the device went under review (the validator's figures) and the operator's decision, when there is one. */
function ReviewBanner({ device, session, onDecided }) {
  const review = device.review;
  const status = device.status || 'active';
  if (!review && status === 'active') return null;
  const state = review ? review.state : status;
  const title = { open: 'Under review', cleared: 'Review cleared', suspended: 'Suspended' }[state] || words(status);
  return html`<section id="review-banner" class=${`banner banner-${state}`} role="status" aria-labelledby="review-title">
    <h2 id="review-title">${title}</h2>
    ${state === 'open' ? html`<p>This device's output has stayed above its reference; its new readings are held
      until the operator clears or suspends it.</p>` : null}
    ${review ? html`<${Definitions} items=${[
      ['Reason', review.reason && html`<span id="review-reason">${review.reason}</span>`],
      ['Opened', review.opened_at], ['Reference', review.reference ? REFERENCE_TEXT[review.reference] || String(review.reference) : null],
      ['CUSUM', figure(review.cusum)], ['Days tested', review.days != null ? String(review.days) : null],
      ['Last day', review.last_day_ratio != null ? `${number(review.last_day_ratio * 100)} % of its reference` : null],
      ['Decision', review.decision && html`<strong id="review-decision">${review.decision}</strong>`],
      ['Decided', review.decided_at && `${review.decided_at} by ${review.decided_by}`], ['Note', review.note]]} />`
      : html`<p>The device is ${words(status)}; its review is shown to its owner and the operator only.</p>`}
    ${state === 'open' && can('review_devices', session)
      ? html`<${DeviceDecision} deviceId=${device.device_id} onDone=${onDecided} />` : null}
  </section>`;
}

/** The operator's two buttons: clear (held readings are judged again) or suspend (they are rejected). */
function DeviceDecision({ deviceId, onDone }) {
  const { note, setNote, error, busy, decide } = useDecision(
    `devices/${encodeURIComponent(deviceId)}/review`, onDone);
  return html`<div class="review" id="device-decision">
    <label for="device-decision-note">Note (required)</label>
    <input id="device-decision-note" value=${note} maxlength="1000" onInput=${(e) => setNote(e.target.value)} />
    <button type="button" id="device-clear" disabled=${busy} onClick=${() => decide('clear')}>Clear review</button>
    <button type="button" id="device-suspend" class="danger" disabled=${busy}
      onClick=${() => decide('suspend')}>Suspend device</button>
    <${ErrorBox} error=${error} />
  </div>`;
}

/** Output steadily below its reference: a note for the owner, nothing is held. */
function MaintenanceNote({ maintenance }) {
  if (!maintenance) return null;
  return html`<section id="maintenance-note" class="note-maintenance" aria-labelledby="maintenance-title">
    <h2 id="maintenance-title">Maintenance</h2>
    <p>${maintenance.reason || 'Output has stayed below what this device should produce.'}</p>
    <p>${maintenance.since ? `Noted ${maintenance.since}. ` : ''}${maintenance.ratio != null
      ? `Output about ${number(maintenance.ratio * 100)} % of its reference. ` : ''}Nothing is held for it.</p>
  </section>`;
}

export function DevicePage({ deviceId, session }) {
  const [version, setVersion] = useState(0);
  const device = useAsync(() => get(`devices/${encodeURIComponent(deviceId)}`), [deviceId, version]);
  const d = device.data || {};
  return html`<h1>Device ${deviceId}</h1>
    <${Loading} state=${device}>
      <${ReviewBanner} device=${d} session=${session || {}} onDecided=${() => setVersion(version + 1)} />
      <${MaintenanceNote} maintenance=${d.maintenance} />
      <${Definitions} items=${[
        ['Owner', d.owner_account_id && html`<${Link} href=${`accounts/${d.owner_account_id}`}>${d.owner_account_id}</${Link}>`],
        ['Type', words(d.device_type)], ['Capacity', d.capacity_w && `${number(d.capacity_w)} W`],
        ['Location', d.latitude !== undefined && coordinates(d)], ['Country', d.country],
        ['Commissioned', d.commissioning_date], ['Off-taker', words(d.offtaker_type)],
        ['Grid connected', d.grid_connected ? 'yes' : 'no'], ['Tilt', d.tilt_deg != null ? `${d.tilt_deg}°` : null],
        ['Azimuth', d.azimuth_deg != null ? `${d.azimuth_deg}°` : null], ['Battery', d.battery_wh != null ? wh(d.battery_wh) : null],
        ['External id', d.external_id], ['Status', d.status && statusBadge(d.status)], ['Registered', d.registered_at], ['Registered by', d.registered_by],
        ['Location commitment', d.location_commitment && html`<code class="hash">${d.location_commitment}</code>`],
        ['Location salt', d.location_salt && html`<code class="secret" id="location-salt">${d.location_salt}</code>`]]} />
      <p><${Link} href=${`drecs?device_id=${encodeURIComponent(deviceId)}`}>D-RECs with energy from this device</${Link}></p>
      <h2>Readings</h2>
      <${ReadingsTable} key=${version} path=${`devices/${encodeURIComponent(deviceId)}/readings`} />
    <//>`;
}
