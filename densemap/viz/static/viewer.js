// densemap's interactive correspondence viewer: two meshes side by side, linked cameras,
// colour modes (parts, charts, colour transfer, per-vertex map quality), and the match of
// the vertex under the pointer marked on the other mesh.
//
// The page holds its data in <script type="application/json" id="densemap-data"> (written
// by densemap/viz/viewer.py): arrays are gzip-compressed, base64-encoded typed arrays.
// Test hook: window.densemap (ready, pick, click, setMode, screenPosition); a URL hash
// "#pick=a:123,b:45&mode=charts" clicks those vertices once the scene is ready and writes
// the results as a JSON list into <pre id="densemap-result">.
import * as THREE from 'three';
import { OrbitControls } from 'three/addons/controls/OrbitControls.js';

const DATA = JSON.parse(document.getElementById('densemap-data').textContent);
const TYPES = { uint8: Uint8Array, uint16: Uint16Array, uint32: Uint32Array, float32: Float32Array };
const UNLABELLED = [153, 153, 153];
const MISSING = [200, 200, 200];
const OTHER = { a: 'b', b: 'a' };
const sides = {};
const state = { mode: DATA.modes[0].key, linked: true, pinned: false, current: null, syncing: false };

async function unpack(p) {
  const raw = atob(p.data);
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'));
  const buf = await new Response(stream).arrayBuffer();
  return new TYPES[p.dtype](buf);
}

function el(tag, attrs = {}, text = null) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== null) e.textContent = text;
  return e;
}

// ---- scene ------------------------------------------------------------------------------

async function buildSide(key) {
  const d = DATA.sides[key];
  const q = await unpack(d.positions);
  const [lo, hi] = d.bounds;
  const pos = new Float32Array(q.length);
  for (let i = 0; i < q.length; i++) {
    const k = i % 3;
    pos[i] = lo[k] + (q[i] / 65535) * (hi[k] - lo[k]);
  }
  const faces = await unpack(d.faces);
  // smooth normals from the shared vertices, then one copy of its corners per face, so that
  // label modes colour whole faces (the face-majority rule) and fields interpolate
  const indexed = new THREE.BufferGeometry();
  indexed.setAttribute('position', new THREE.BufferAttribute(pos, 3));
  indexed.setIndex(new THREE.BufferAttribute(faces, 1));
  indexed.computeVertexNormals();
  const geom = indexed.toNonIndexed();
  indexed.dispose();
  const colors = new THREE.BufferAttribute(new Float32Array(3 * faces.length), 3);
  geom.setAttribute('color', colors);
  geom.computeBoundingSphere();
  // each mesh is centred and scaled to unit height for display (its own units may differ)
  const extent = Math.max(hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2]) || 1;
  const mesh = new THREE.Mesh(geom, new THREE.MeshLambertMaterial({ vertexColors: true, side: THREE.DoubleSide }));
  mesh.scale.setScalar(1 / extent);
  mesh.position.set(-(lo[0] + hi[0]) / 2 / extent, -(lo[1] + hi[1]) / 2 / extent, -(lo[2] + hi[2]) / 2 / extent);

  const canvas = document.getElementById(`canvas-${key}`);
  const renderer = new THREE.WebGLRenderer({ canvas, antialias: true, preserveDrawingBuffer: true });
  renderer.setPixelRatio(window.devicePixelRatio || 1);
  const scene = new THREE.Scene();
  scene.background = new THREE.Color(0xffffff);
  scene.add(mesh);
  scene.add(new THREE.HemisphereLight(0xffffff, 0x888888, 2.0));
  const camera = new THREE.PerspectiveCamera(30, 1, 0.01, 100);
  camera.position.set(0, 0, 2.4);
  const head = new THREE.DirectionalLight(0xffffff, 1.2);
  head.position.set(0.3, 0.5, 1);
  camera.add(head);
  scene.add(camera);
  const controls = new OrbitControls(camera, canvas);
  controls.enableDamping = false;

  const markerSize = 0.012 * extent;
  const marker = new THREE.Mesh(new THREE.SphereGeometry(markerSize, 16, 12),
    new THREE.MeshBasicMaterial({ color: 0xff00ff, depthTest: false, transparent: true, opacity: 0.9 }));
  marker.renderOrder = 10;
  marker.visible = false;
  mesh.add(marker);

  const labels = {}, faceLabels = {};
  for (const [name, p] of Object.entries(d.labels)) labels[name] = await unpack(p);
  for (const [name, p] of Object.entries(d.face_labels)) faceLabels[name] = await unpack(p);
  const fields = {};
  for (const [name, p] of Object.entries(d.fields)) fields[name] = await unpack(p);
  sides[key] = {
    key, d, pos, faces, geom, colors, mesh, canvas, renderer, scene, camera, controls, marker,
    map: await unpack(d.map), labels, faceLabels, fields, lo, hi, cache: {},
  };
}

function resize() {
  for (const s of Object.values(sides)) {
    const w = s.canvas.clientWidth, h = s.canvas.clientHeight;
    s.renderer.setSize(w, h, false);
    s.camera.aspect = w / Math.max(h, 1);
    s.camera.updateProjectionMatrix();
  }
  render();
}

let pending = false;
function render() {
  if (pending) return;
  pending = true;
  requestAnimationFrame(() => {
    pending = false;
    for (const s of Object.values(sides)) s.renderer.render(s.scene, s.camera);
  });
}

function renderNow() {
  for (const s of Object.values(sides)) s.renderer.render(s.scene, s.camera);
}

function linkCameras(from) {
  if (!state.linked || state.syncing) return;
  const to = sides[OTHER[from.key]];
  state.syncing = true;
  to.camera.position.copy(from.camera.position);
  to.camera.quaternion.copy(from.camera.quaternion);
  to.controls.target.copy(from.controls.target);
  to.camera.zoom = from.camera.zoom;
  to.camera.updateProjectionMatrix();
  to.controls.update();
  state.syncing = false;
}

// ---- colours ------------------------------------------------------------------------------

function lutColor(lut, t) {
  const i = Math.max(0, Math.min(255, Math.round(t * 255)));
  return [lut[3 * i], lut[3 * i + 1], lut[3 * i + 2]];
}

function positionColors(s) {
  const n = s.pos.length / 3, out = new Uint8Array(3 * n);
  for (let i = 0; i < n; i++)
    for (let k = 0; k < 3; k++) {
      const span = s.hi[k] - s.lo[k];
      out[3 * i + k] = Math.round(255 * (span > 0 ? (s.pos[3 * i + k] - s.lo[k]) / span : 0.5));
    }
  return out;
}

// per face corner: label modes colour each face by its label, the others each corner by its vertex
function modeColors(s, mode) {
  if (s.cache[mode]) return s.cache[mode];
  const nf = s.faces.length / 3, out = new Uint8Array(3 * s.faces.length);
  const put = (c, r) => { out[3 * c] = r[0]; out[3 * c + 1] = r[1]; out[3 * c + 2] = r[2]; };
  if (DATA.legends[mode]) {
    const lab = s.faceLabels[mode], pal = DATA.legends[mode].colors;
    for (let f = 0; f < nf; f++) {
      const r = lab && lab[f] > 0 ? pal[lab[f] - 1] : UNLABELLED;
      put(3 * f, r); put(3 * f + 1, r); put(3 * f + 2, r);
    }
  } else {
    let color;
    if (mode === 'transfer') {
      // A coloured by position; B takes the colour of the A vertex its map points to
      const a = sides.a, ca = a.cache.__position || (a.cache.__position = positionColors(a));
      color = s.key === 'a' ? (v => [ca[3 * v], ca[3 * v + 1], ca[3 * v + 2]])
        : (v => { const j = s.map[v]; return [ca[3 * j], ca[3 * j + 1], ca[3 * j + 2]]; });
    } else {
      const f = s.fields[mode], lut = DATA.fields[mode].lut;
      color = v => (f && f[v] !== 65535 ? lutColor(lut, f[v] / 65534) : MISSING);
    }
    for (let c = 0; c < s.faces.length; c++) put(c, color(s.faces[c]));
  }
  s.cache[mode] = out;
  return out;
}

function setMode(mode) {
  if (!DATA.modes.some(m => m.key === mode)) throw new Error(`unknown mode ${mode}`);
  state.mode = mode;
  for (const s of Object.values(sides)) {
    const c = modeColors(s, mode), arr = s.colors.array;
    for (let i = 0; i < c.length; i++) arr[i] = c[i] / 255;
    s.colors.needsUpdate = true;
  }
  for (const r of document.querySelectorAll('input[name=mode]')) r.checked = r.value === mode;
  drawLegend();
  showInfo();
  render();
}

// ---- legend and info ------------------------------------------------------------------------

function rgb(c) { return `rgb(${c[0]},${c[1]},${c[2]})`; }

function drawLegend() {
  const box = document.getElementById('legend');
  box.replaceChildren();
  const mode = state.mode, m = DATA.modes.find(x => x.key === mode);
  box.appendChild(el('h2', {}, m.label));
  if (m.caption) box.appendChild(el('p', { class: 'caption' }, m.caption));
  if (DATA.legends[mode]) {
    const { names, colors } = DATA.legends[mode];
    const list = el('ul', { class: 'swatches' });
    names.forEach((name, k) => {
      const li = el('li', { 'data-label': String(k + 1) });
      const sw = el('span', { class: 'swatch' });
      sw.style.background = rgb(colors[k]);
      li.append(sw, el('span', {}, name));
      list.appendChild(li);
    });
    box.appendChild(list);
  } else if (DATA.fields[mode]) {
    const f = DATA.fields[mode], stops = [];
    for (let k = 0; k <= 10; k++) stops.push(`${rgb(lutColor(f.lut, k / 10))} ${k * 10}%`);
    const bar = el('div', { class: 'colorbar' });
    bar.style.background = `linear-gradient(to right, ${stops.join(', ')})`;
    const ticks = el('div', { class: 'ticks' });
    ticks.append(el('span', {}, f.tick_lo), el('span', {}, f.tick_mid), el('span', {}, f.tick_hi));
    box.append(bar, ticks);
    if (f.missing) {
      const miss = el('p', { class: 'caption' });
      const sw = el('span', { class: 'swatch' });
      sw.style.background = rgb(MISSING);
      miss.append(sw, document.createTextNode(' ' + f.missing));
      box.appendChild(miss);
    }
  }
}

function describe(s, v) {
  const parts = [`${s.d.label} vertex ${v}`];
  for (const [name, lg] of Object.entries(DATA.legends)) {
    const lab = s.labels[name];
    if (lab) parts.push(`${lg.singular}: ${lab[v] > 0 ? lg.names[lab[v] - 1] : 'none'}`);
  }
  const f = DATA.fields[state.mode];
  if (f && s.fields[state.mode] && s.fields[state.mode][v] !== 65535) {
    const t = s.fields[state.mode][v] / 65534;
    parts.push(`${f.short}: ${(f.lo + t * (f.hi - f.lo)).toPrecision(3)}${f.clipped && t >= 1 ? '+' : ''}`);
  }
  return parts.join(', ');
}

function showInfo() {
  const box = document.getElementById('info');
  const c = state.current;
  if (!c) {
    box.textContent = 'Hover over a mesh to see where each vertex maps; click to pin the pick, drag to turn both meshes.';
    return;
  }
  const s = sides[c.side], o = sides[OTHER[c.side]];
  box.textContent = `${describe(s, c.vertex)}  \u2192  ${describe(o, c.match)}` + (state.pinned ? '  (pinned; click again to release)' : '');
}

// ---- picking ------------------------------------------------------------------------------

function markVertex(s, v) {
  s.marker.position.set(s.pos[3 * v], s.pos[3 * v + 1], s.pos[3 * v + 2]);
  s.marker.visible = true;
}

function pick(side, vertex) {
  const s = sides[side];
  if (!s) throw new Error(`unknown side ${side}`);
  vertex = Number(vertex);
  if (!(vertex >= 0 && vertex < s.d.n_vertices && Number.isInteger(vertex))) throw new Error(`no vertex ${vertex} on ${side}`);
  const match = s.map[vertex];
  markVertex(s, vertex);
  markVertex(sides[OTHER[side]], match);
  state.current = { side, vertex, match };
  showInfo();
  render();
  return match;
}

const raycaster = new THREE.Raycaster();

function vertexAt(s, clientX, clientY) {
  const r = s.canvas.getBoundingClientRect();
  const ndc = new THREE.Vector2(((clientX - r.left) / r.width) * 2 - 1, -((clientY - r.top) / r.height) * 2 + 1);
  raycaster.setFromCamera(ndc, s.camera);
  const hit = raycaster.intersectObject(s.mesh, false)[0];
  if (!hit) return null;
  const p = s.mesh.worldToLocal(hit.point.clone());
  let best = -1, bestD = Infinity;
  for (let k = 0; k < 3; k++) {
    const v = s.faces[3 * hit.faceIndex + k];
    const d = (s.pos[3 * v] - p.x) ** 2 + (s.pos[3 * v + 1] - p.y) ** 2 + (s.pos[3 * v + 2] - p.z) ** 2;
    if (d < bestD) { bestD = d; best = v; }
  }
  return best;
}

function onPointer(s, ev, kind) {
  if (kind === 'move') {
    // at most one ray per frame however fast the pointer moves
    if (state.pinned || ev.buttons) return;
    const first = !s.hover;
    s.hover = [ev.clientX, ev.clientY];
    if (first) requestAnimationFrame(() => {
      const [x, y] = s.hover;
      s.hover = null;
      if (state.pinned) return;
      const v = vertexAt(s, x, y);
      if (v !== null) pick(s.key, v);
    });
    return;
  }
  const v = vertexAt(s, ev.clientX, ev.clientY);
  if (kind === 'click') {
    if (s.down && Math.hypot(ev.clientX - s.down[0], ev.clientY - s.down[1]) > 4) return; // a drag, not a click
    if (v === null) { state.pinned = false; showInfo(); return; }
    state.pinned = !(state.pinned && state.current && state.current.side === s.key && state.current.vertex === v);
  }
  if (v !== null) pick(s.key, v);
}

function screenPosition(side, vertex) {
  const s = sides[side];
  const p = new THREE.Vector3(s.pos[3 * vertex], s.pos[3 * vertex + 1], s.pos[3 * vertex + 2]);
  s.mesh.updateMatrixWorld();
  p.applyMatrix4(s.mesh.matrixWorld).project(s.camera);
  const r = s.canvas.getBoundingClientRect();
  return { x: r.left + ((p.x + 1) / 2) * r.width, y: r.top + ((1 - p.y) / 2) * r.height };
}

// A click at the vertex's place on the screen, through the page's own event handlers: the
// vertex found there (the ray's nearest face corner) and its match on the other mesh.
function click(side, vertex) {
  const s = sides[side];
  const { x, y } = screenPosition(side, vertex);
  s.down = null;
  state.pinned = false;
  state.current = null;
  s.canvas.dispatchEvent(new MouseEvent('click', { clientX: x, clientY: y, bubbles: true }));
  return state.current ? { side, vertex: state.current.vertex, match: state.current.match, x, y } : { side, vertex: null, x, y };
}

// ---- page ---------------------------------------------------------------------------------

function buildControls() {
  const bar = document.getElementById('modes');
  for (const m of DATA.modes) {
    const label = el('label', { title: m.caption || '' });
    const input = el('input', { type: 'radio', name: 'mode', value: m.key });
    input.addEventListener('change', () => setMode(m.key));
    label.append(input, document.createTextNode(' ' + m.label));
    bar.appendChild(label);
  }
  const link = document.getElementById('link');
  link.addEventListener('change', () => { state.linked = link.checked; if (state.linked) linkCameras(sides.a); render(); });
  document.getElementById('reset').addEventListener('click', () => {
    for (const s of Object.values(sides)) { s.controls.reset(); }
    render();
  });
}

async function main() {
  document.title = DATA.title;
  await buildSide('a');
  await buildSide('b');
  for (const s of Object.values(sides)) {
    s.controls.addEventListener('change', () => { linkCameras(s); render(); });
    s.canvas.addEventListener('pointerdown', ev => { s.down = [ev.clientX, ev.clientY]; });
    s.canvas.addEventListener('pointermove', ev => onPointer(s, ev, 'move'));
    s.canvas.addEventListener('click', ev => onPointer(s, ev, 'click'));
    s.controls.saveState();
  }
  buildControls();
  window.addEventListener('resize', resize);
  resize();
  setMode(state.mode);
  const params = new URLSearchParams(location.hash.slice(1));
  if (params.get('mode')) setMode(params.get('mode'));
  const results = [];
  if (params.get('pick')) {
    renderNow();
    for (const item of params.get('pick').split(',')) {
      const [side, v] = item.split(':');
      results.push(click(side, Number(v)));
    }
    state.pinned = true;
    showInfo();
  }
  renderNow();
  window.densemap.ready = true;
  document.body.dataset.ready = '1';
  document.getElementById('densemap-result').textContent = JSON.stringify(results);
}

window.densemap = {
  ready: false, pick, click, setMode, screenPosition,
  get state() { return { mode: state.mode, current: state.current, linked: state.linked }; },
};
main().catch(err => {
  document.body.dataset.ready = 'error';
  document.getElementById('densemap-result').textContent = JSON.stringify({ error: String(err && err.stack || err) });
  document.getElementById('info').textContent = `The viewer could not start: ${err}`;
  throw err;
});
