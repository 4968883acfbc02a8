// The dashboard page: one EventSource, one card per group. Everything that comes from Redis
// (group names, member ids, hosts, reasons) is planted data: it only ever reaches the page as
// text (textContent) or as a number, never as markup.

/** The shortest span the timeline shows, so that a new dashboard's first seconds are not stretched. */
const MIN_SPAN_MS = 30_000;
const SVG_WIDTH = 600;
const SVG_HEIGHT = 60;

const section = document.getElementById('groups');
const noGroups = document.getElementById('no-groups');
const template = document.getElementById('group-template');
const live = document.getElementById('live');

/** Group name → { view, receivedAt, root, parts }. */
const cards = new Map();
/** Transitions kept per group, and the timeline's window in ms: the server says (hello). */
let historyLength = 0;
let timelineMs = 0;

function part(root, selector) {
  return root.querySelector(selector);
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = String(text);
  return node;
}

function duration(ms) {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${Number((ms / 1000).toFixed(ms % 1000 === 0 ? 0 : 1))} s`;
}

function clock(ms) {
  const d = new Date(ms);
  const pad = (n, w = 2) => String(n).padStart(w, '0');
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

function setLive(state, text) {
  live.dataset.live = state;
  live.textContent = text;
}

/** Redis time now, estimated from the card's last read. */
function serverNow(card) {
  return card.view.snapshot.serverTime + (performance.now() - card.receivedAt);
}

function createCard(view) {
  const root = template.content.firstElementChild.cloneNode(true);
  root.dataset.group = view.snapshot.group;
  const card = {
    view,
    receivedAt: performance.now(),
    root,
    parts: {
      name: part(root, '.group-name'),
      count: part(root, '.count'),
      active: part(root, '.active'),
      goal: part(root, '.goal'),
      facts: part(root, '.facts'),
      readError: part(root, '.read-error'),
      activeLine: part(root, '.active-line'),
      goalLine: part(root, '.goal-line'),
      span: part(root, '.span'),
      top: part(root, '.y-top'),
      members: part(root, '.members'),
      rows: part(root, '.members tbody'),
      noMembers: part(root, '.no-members'),
      transitions: part(root, '.transitions'),
    },
  };
  card.parts.name.textContent = view.snapshot.group;
  return card;
}

function place(card) {
  const name = card.view.snapshot.group;
  const after = [...cards.values()].map((c) => c.root).find((root) => root.isConnected && root.dataset.group > name);
  section.insertBefore(card.root, after ?? null);
}

function renderSnapshot(card) {
  const s = card.view.snapshot;
  const { parts } = card;
  parts.active.textContent = String(s.activeCount);
  parts.goal.textContent = String(s.activeGoal);
  const healthy = s.activeCount === Math.min(s.activeGoal, s.members.length);
  parts.count.dataset.health = healthy ? 'ok' : 'short';
  const facts = [
    `${s.members.length} member${s.members.length === 1 ? '' : 's'}`,
    `epoch ${s.epoch}`,
    `version ${s.version}`,
    `heartbeat ${duration(s.heartbeatInterval)}`,
    `activation ${duration(s.activationInterval)}`,
  ];
  if (s.quarantineRemainingMs > 0) facts.push(`quarantine ${duration(s.quarantineRemainingMs)}`);
  parts.facts.replaceChildren(...facts.map((fact) => element('span', 'fact', fact)));
  parts.readError.hidden = card.view.readError === undefined;
  parts.readError.textContent = card.view.readError ? `reads failing, retrying: ${card.view.readError}` : '';

  parts.members.hidden = s.members.length === 0;
  parts.noMembers.hidden = s.members.length > 0;
  parts.rows.replaceChildren(
    ...s.members.map((m) => {
      const row = element('tr');
      row.dataset.member = m.id;
      row.dataset.state = m.state;
      row.append(element('td', 'rank', m.rank));
      const id = element('td', 'member-id');
      id.append(element('span', 'id', m.id));
      // On a phone the weight and epoch columns give way to this line.
      id.append(element('span', 'inline-numbers muted', `weight ${m.weight} · epoch ${m.epoch ?? '–'}`));
      if (m.host !== undefined) {
        id.append(element('span', 'where muted', m.pid === undefined ? m.host : `${m.host} · pid ${m.pid}`));
      }
      row.append(id, element('td', 'num', m.weight));
      const state = element('td');
      state.append(element('span', `state state-${m.state}`, m.state));
      row.append(state, element('td', 'num epoch', m.epoch ?? '–'));
      const lease = element('td', 'lease');
      const bar = element('span', 'bar');
      bar.append(element('span', 'fill'));
      lease.append(bar, element('span', 'left'));
      row.append(lease);
      row.dataset.leaseMs = String(m.leaseRemainingMs);
      return row;
    }),
  );
  renderLeases(card);
}

function renderLeases(card) {
  const elapsed = performance.now() - card.receivedAt;
  const lease = card.view.snapshot.activationInterval;
  for (const row of card.parts.rows.children) {
    const left = Math.max(0, Number(row.dataset.leaseMs) - elapsed);
    const fraction = lease > 0 ? Math.min(1, left / lease) : 0;
    const fill = row.querySelector('.fill');
    fill.style.width = `${(fraction * 100).toFixed(1)}%`;
    fill.dataset.level = fraction > 0.5 ? 'ok' : fraction > 0.2 ? 'low' : 'lapsing';
    row.querySelector('.left').textContent = `${(left / 1000).toFixed(1)} s`;
  }
}

/** A step line of `key` (active or goal) over the window, as SVG polyline points. */
function stepLine(points, key, start, now, top) {
  const x = (t) => (((Math.max(t, start) - start) / (now - start)) * SVG_WIDTH).toFixed(1);
  const y = (v) => (SVG_HEIGHT - 4 - (v / top) * (SVG_HEIGHT - 10)).toFixed(1);
  const coords = [];
  let value;
  for (const point of points) {
    if (value !== undefined) coords.push(`${x(point.time)},${y(value)}`);
    value = point[key];
    coords.push(`${x(point.time)},${y(value)}`);
  }
  if (value !== undefined) coords.push(`${SVG_WIDTH},${y(value)}`);
  return coords.join(' ');
}

function renderTimeline(card) {
  const now = serverNow(card);
  const points = card.view.timeline;
  // From the first point the dashboard saw (at least a minute), up to the server's window.
  const span = Math.min(timelineMs, Math.max(MIN_SPAN_MS, now - points[0].time));
  const start = now - span;
  card.parts.span.textContent =
    span < 90_000 ? `last ${Math.round(span / 1000)} s` : `last ${Math.round(span / 60_000)} min`;
  const top = Math.max(1, ...points.map((p) => Math.max(p.active, p.goal)));
  card.parts.top.textContent = String(top);
  card.parts.activeLine.setAttribute('points', stepLine(points, 'active', start, now, top));
  card.parts.goalLine.setAttribute('points', stepLine(points, 'goal', start, now, top));
}

function transitionItem(t) {
  const item = element('li');
  item.dataset.type = t.type;
  item.append(element('time', 'muted', clock(t.time)), element('span', `type type-${t.type}`, t.type));
  item.append(element('span', 'who', t.member || '–'));
  const details = [
    t.epoch === undefined ? '' : `epoch ${t.epoch}`,
    t.weight === undefined ? '' : `weight ${t.weight}`,
    t.goal === undefined ? '' : `goal ${t.goal}`,
    t.reason ?? '',
  ].filter(Boolean);
  item.append(element('span', 'details muted', details.join(' ')));
  return item;
}

function renderTransitions(card) {
  // Newest first.
  card.parts.transitions.replaceChildren(...card.view.transitions.map(transitionItem).reverse());
}

function renderCard(card) {
  renderSnapshot(card);
  renderTimeline(card);
  renderTransitions(card);
}

function showEmpty() {
  noGroups.hidden = cards.size > 0;
}

function add(view) {
  remove(view.snapshot.group);
  const card = createCard(view);
  cards.set(view.snapshot.group, card);
  place(card);
  renderCard(card);
  showEmpty();
}

function remove(group) {
  const card = cards.get(group);
  if (!card) return;
  card.root.remove();
  cards.delete(group);
  showEmpty();
}

function on(type, handle) {
  events.addEventListener(type, (event) => handle(JSON.parse(event.data)));
}

const events = new EventSource('events');
events.addEventListener('open', () => setLive('live', 'live'));
events.addEventListener('error', () => setLive('down', 'reconnecting…'));

on('hello', (state) => {
  document.getElementById('connection').textContent = state.connection;
  historyLength = state.history;
  timelineMs = state.timelineMs;
  for (const group of [...cards.keys()]) remove(group);
  for (const view of state.groups) add(view);
  showEmpty();
});
on('added', ({ view }) => add(view));
on('removed', ({ group }) => remove(group));
on('snapshot', ({ group, snapshot }) => {
  const card = cards.get(group);
  if (!card) return;
  card.view.snapshot = snapshot;
  card.receivedAt = performance.now();
  delete card.view.readError;
  renderSnapshot(card);
});
on('transition', ({ group, transition }) => {
  const card = cards.get(group);
  if (!card) return;
  card.view.transitions.push(transition);
  if (card.view.transitions.length > historyLength) card.view.transitions.shift();
  renderTransitions(card);
});
on('point', ({ group, point }) => {
  const card = cards.get(group);
  if (!card) return;
  const { timeline } = card.view;
  timeline.push(point);
  // Keep one point from before the window, as the server does: it says what the window starts with.
  while (timeline.length > 1 && timeline[1].time < point.time - timelineMs) timeline.shift();
  renderTimeline(card);
});
on('read-error', ({ group, message }) => {
  const card = cards.get(group);
  if (!card) return;
  card.view.readError = message;
  renderSnapshot(card);
});

// Leases drain between reads; the timeline's right edge moves with the clock.
let ticks = 0;
function tick() {
  ticks += 1;
  for (const card of cards.values()) {
    renderLeases(card);
    if (ticks % 4 === 0) renderTimeline(card);
  }
  setTimeout(tick, 250);
}
tick();
