/* clipviz: the error-surface page's browser code (clipviz.web.pages.surface).
 *
 * The page's data (its last argument) says which controls there are, their names in the link and
 * in the view endpoint's body, which figures a change of each redraws, and the ids of the figures
 * and message lines; what the image buttons export; what the step slider, the play button and
 * hovering a step move and mark, and the descents the page came with: {view, export, time, steps}
 * (clipviz.web.pages.surface.browser_data).
 */
window.dash_clientside = window.dash_clientside || {};
window.dash_clientside.clipviz = Object.assign({}, window.dash_clientside.clipviz, {

    /* One browser-side callback for every control: it writes the address bar and the copy-link
     * box, and posts the values to the view endpoint (not a Dash server callback; see
     * clipviz.web.pages.surface.view_endpoint), asking only for the figures the change needs.  The
     * answer is drawn with set_props, surface then paths in one go; a stale answer (the controls
     * moved on meanwhile) is dropped; the side figure follows once the surface is drawn (at most
     * 1 s later).  Messages are set only where their text changes.  Returns no_update.
     * Arguments: the values of the controls view.controls, then the page's data. */
    surfaceView: function (...args) {
        const dc = window.dash_clientside, ns = dc.clipviz, data = args.pop(), view = data.view, ids = view.ids;
        // the link: every control and the step in view (surfaceLink)
        const st = ns.surfaceTimeState(data.time, data.steps);
        if (st) { st.query = ns.urlQuery(view.controls.map(c => c.url), args); ns.surfaceLink(view, st); }

        // which figures the change needs (none on the first call: the page came with them)
        const changed = (dc.callback_context.triggered || []).map(t => t.prop_id.split('.')[0]);
        const names = view.controls.filter(c => changed.includes(c.id)).map(c => c.name);
        // a new clipping rule: the legend of the title layer names it (no request, after this change's)
        const legend = data.time.legend, ruleAt = view.controls.findIndex(c => c.name === legend.control);
        if (names.includes(legend.control)) { setTimeout(() => ns.surfaceLegend(data.time, args[ruleAt]), 0); }
        const want = {};
        Object.entries(view.redraws).forEach(([fig, by]) => { want[fig] = names.some(k => by.includes(k)); });
        const box = document.getElementById(ids.paths);
        if (!box || !Object.values(want).some(w => w)) { return dc.no_update; }
        const seq = box.__clipvizSeq = (box.__clipvizSeq || 0) + 1;
        const current = () => document.getElementById(ids.paths) === box && box.__clipvizSeq === seq;
        const overlay = box.closest('.overlay');
        const say = (msgs) => Object.entries(msgs).forEach(([k, m]) => {
            const id = view.msgs[k], el = id && document.getElementById(id);
            if (el && el.textContent !== (m || '')) { dc.set_props(id, {children: m || ''}); }
        });
        const busyTimer = setTimeout(() => { if (current() && overlay) { overlay.dataset.busy = '1'; } }, 150);
        const done = () => { clearTimeout(busyTimer); if (overlay && current()) { delete overlay.dataset.busy; } };
        const body = Object.assign({}, want);
        view.controls.forEach((c, i) => { if (c.arg) { body[c.arg] = args[i]; } });
        // a 503 means every heavy slot of the server is taken: ask again shortly, while still current
        const ask = (attempt) => fetch(ns.appPath(view.route), {
            method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body)})
        .then(r => (r.status === 503 && attempt < 30 && current())
              ? new Promise(ok => setTimeout(ok, 150 + 50 * attempt)).then(() => ask(attempt + 1))
              : r.json().then(out => ({ok: r.ok, out}), () => ({ok: false, out: {}})));
        ask(0)
        .then(({ok, out}) => {
            if (!current()) { return; }
            done();
            if (!ok) {
                say({server: (out && out.error) || 'the server did not answer; the figures show the last good values'});
                return;
            }
            say(Object.assign({server: ''}, out.msgs || {}));
            if (out.surface) { dc.set_props(ids.surface, {figure: out.surface}); }
            const frame = document.querySelector('#' + ids.frame + ' .js-plotly-plot');
            if (out.frame && !(frame && frame.layout && frame.layout.meta === out.frame.layout.meta)) {
                dc.set_props(ids.frame, {figure: out.frame});
            }
            const title = document.getElementById(ids.title);
            if (out.title && title && title.textContent !== out.title) { dc.set_props(ids.title, {children: out.title}); }
            if (out.paths) { dc.set_props(ids.paths, {figure: out.paths}); }
            // the steps of the new descents: the step slider, the markers and the 3-D view follow,
            // after the figures (the side figure comes with its markers of the step in view)
            if (out.steps) { ns.surfaceTimeSteps(data.time, out.steps, out.paths); }
            if (!out.diag) { setTimeout(() => ns.surfaceTimeDraw(data.time), 0); return; }
            ns.surfaceNowInto(data.time, out.diag);
            const surf = document.getElementById(ids.surface);
            const busy = () => { const gd = surf && surf.querySelector('.js-plotly-plot');
                                 return !!gd && gd.classList.contains('dash-graph--pending'); };
            const t0 = performance.now();
            const draw = () => {
                if (!current()) { return; }
                if (out.surface && busy() && performance.now() - t0 < 1000) { setTimeout(draw, 4); return; }
                dc.set_props(ids.diag, {figure: out.diag});
                ns.surfaceTimeDraw(data.time, true);  // the side figure came with its marks
            };
            setTimeout(draw, 0);
        })
        .catch(() => {
            if (current()) { done(); say({server: 'no connection to the server; the figures show the last good values'}); }
        });
        return dc.no_update;
    },

    /* The PNG / SVG buttons: the figure a button names in the page's data {export: {buttons,
     * figures, size}}, as one image with all its layers.  A figure with `layers` is the surface:
     * its base layer, paths, frame (tick labels, colour bar), title and legend composed; one
     * without is drawn as it is, with its axis titles (on their own layer on the page). */
    surfaceExport: function (...args) {
        const dc = window.dash_clientside, spec = args.pop().export;
        const trig = (dc.callback_context.triggered || [])[0];
        const button = trig && spec.buttons[trig.prop_id.split('.')[0]];
        if (!button) { return dc.no_update; }
        const [which, fmt] = button, fig = spec.figures[which], size = spec.size;
        const gd = (id) => document.querySelector('#' + id + ' .js-plotly-plot');
        const titled = (layout) => {
            Object.entries(fig.axes).forEach(([ax, title]) => { layout[ax] = Object.assign({}, layout[ax], {title}); });
            return layout;
        };
        const base = gd(fig.graph);
        let data, layout;
        if (!fig.layers) {
            // the legend at the image's foot; without the page's marks of the step in view
            layout = titled(Object.assign({}, base.layout, {
                height: size.height, width: size.width, showlegend: true, legend: fig.legend, margin: fig.margin,
                shapes: (base.layout.shapes || []).filter(s => s.name !== 'cv-now')}));
            data = base.data;
        } else {
            const top = gd(fig.layers.paths), frame = gd(fig.layers.frame);
            // the page's title less what it says about the page (a click sets the start)
            const title = document.getElementById(fig.layers.title).textContent.replace(fig.hint, '').trim();
            layout = titled(Object.assign({}, frame.layout, {
                showlegend: true, legend: fig.legend, annotations: top.layout.annotations, margin: fig.margin,
                height: size.height, width: size.width, title: Object.assign({text: title}, fig.title)}));
            // bricks drawn one by one in the export (an image scaled up there may be smoothed)
            const heat = Object.assign({}, base.data[0], {zsmooth: false, showscale: true,
                                                          colorbar: frame.data[0].colorbar});
            // the path layer's steps are marked by the page's SVG markers: Plotly markers in the export
            const paths = top.data.map(t => (t.meta && t.meta.export) ? Object.assign({}, t, t.meta.export) : t);
            data = [heat].concat(base.data.slice(1), paths);
        }
        Plotly.toImage({data: data, layout: layout},
                       {format: fmt, width: size.width, height: size.height,
                        scale: fmt === 'png' ? size.scale : 1}).then(url => {
            const a = document.createElement('a');
            a.href = url; a.download = fig.file + '.' + fmt;
            document.body.appendChild(a); a.click(); a.remove();
        });
        return '';
    },

    /* ---- time and linking: the step in view, moved by the step slider, the play button, a new
     * descent or the mouse over a step, and marked on every figure without a request.  The page's
     * data {time: {ids, legend, floor, diag, play, hover_px}, steps} (clipviz.web.pages.surface
     * .browser_data); the state is kept on the time bar's element, so a new page starts afresh. */

    /* A typed-array spec (clipviz.figures._util.typed: {dtype, bdata}, little-endian) as a typed
     * array; a plain array as it is. */
    typedArray: function (spec) {
        if (!spec || Array.isArray(spec) || ArrayBuffer.isView(spec)) { return spec || []; }
        const bin = atob(spec.bdata), bytes = new Uint8Array(bin.length);
        for (let i = 0; i < bin.length; i++) { bytes[i] = bin.charCodeAt(i); }
        const types = {f8: Float64Array, f4: Float32Array, u1: Uint8Array, i4: Int32Array};
        return new types[spec.dtype](bytes.buffer);
    },

    /* The link: every control (st.query, as surfaceView last wrote it) and the step in view
     * (`step`, left out at 0), written to the address bar and the copy-link box once the controls
     * and the step slider rest (400 ms without a change), so that it never competes with drawing. */
    surfaceLink: function (view, st) {
        const dc = window.dash_clientside, path = window.location.pathname;
        if (typeof st.query !== 'string') { return; }
        const url = path + '?' + st.query + (st.k > 0 ? (st.query ? '&' : '') + 'step=' + st.k : '');
        clearTimeout(window.__clipvizUrlTimer);
        window.__clipvizUrlTimer = setTimeout(() => {
            if (window.location.pathname !== path) { return; }  // the user went to another page meanwhile
            if (window.location.pathname + window.location.search !== url) {
                window.history.replaceState(window.history.state, '', url);
            }
            // the copy-link box: set here, once the controls rest, rather than as a callback's
            // output, which costs Dash main-thread time right after the request leaves
            const box = document.getElementById(view.ids.link), link = window.location.origin + url;
            if (box && box.value !== link) { dc.set_props(view.ids.link, {value: link}); }
        }, 400);
    },

    /* The state of the page's time and linking: {raw, steps, k (the slider's step), hover (the
     * hovered step or null), range (the path layer's axes)}; `steps` (as the view endpoint sends
     * them) where it has none yet.  Kept on the time bar's element (a plain element: a graph's
     * is replaced once its code has loaded); null while the page has none. */
    surfaceTimeState: function (time, steps) {
        const el = document.getElementById(time.ids.time);
        if (!el) { return null; }
        const st = el.__cvTime = el.__cvTime || {raw: null, steps: null, k: 0, hover: null, range: null};
        if (!st.steps && steps) { window.dash_clientside.clipviz.surfaceTimeSteps(time, steps); }
        return st;
    },

    /* New descents: their steps decoded into the state, the step slider's end moved to the last
     * step of the longer one; `paths`, the path layer drawn with them (its axes' ranges). */
    surfaceTimeSteps: function (time, steps, paths) {
        const dc = window.dash_clientside, ns = dc.clipviz, el = document.getElementById(time.ids.time);
        if (!el) { return; }
        const st = el.__cvTime = el.__cvTime || {raw: null, steps: null, k: 0, hover: null, range: null};
        if (paths) { st.range = [paths.layout.xaxis.range, paths.layout.yaxis.range]; }
        if (st.raw === steps) { return; }
        const run = (r) => ({name: r.name, w: ns.typedArray(r.w), b: ns.typedArray(r.b), E: ns.typedArray(r.E),
                             g: ns.typedArray(r.g), fired: r.fired ? ns.typedArray(r.fired) : null});
        const old = st.steps ? ns.surfaceLastStep(st) : null;
        st.raw = steps;
        st.steps = {u: run(steps.u), c: run(steps.c)};
        const last = ns.surfaceLastStep(st);
        if (old !== null && last !== old) {
            const marks = {0: '0'};
            marks[last] = String(last);
            const props = {max: last, marks: marks};
            if (st.k > last) { st.k = last; props.value = last; }
            dc.set_props(time.ids.step, props);
        }
    },

    /* The last step of the longer descent (the step slider's end). */
    surfaceLastStep: function (st) {
        return Math.max(st.steps.u.w.length, st.steps.c.w.length) - 1;
    },

    /* The step in view on each descent: {u, c}, each {i (its own step: a diverged descent stops
     * early), w, b, E, g (NaN past its last step taken), fired, name}; and k, the step asked for. */
    surfaceTimePoints: function (st) {
        const k = st.hover !== null ? st.hover : st.k;
        const at = (r) => {
            const i = Math.max(0, Math.min(k, r.w.length - 1));
            return {i: i, w: r.w[i], b: r.b[i], E: r.E[i], g: i < r.g.length ? r.g[i] : NaN,
                    fired: !!(r.fired && r.fired[i]), name: r.name};
        };
        return {k: k, u: at(st.steps.u), c: at(st.steps.c)};
    },

    /* The side figure's shapes with the marks of the step in view (their templates: time.diag)
     * in place of any earlier ones: a line at the step, a ring on each descent's ‖g‖ and E, as
     * high as wide (time.ring_px up and down, in the units of the log axes of `gd`, the side
     * figure on the page). */
    surfaceNowShapes: function (time, shapes, pts, gd) {
        const own = (shapes || []).filter(s => s.name !== 'cv-now'), full = gd && gd._fullLayout;
        return own.concat(time.diag.map(m => {
            if (m.run === null) { return Object.assign({}, m.shape, {x0: pts.k, x1: pts.k}); }
            const p = pts[m.run], v = m.series === 'g' ? p.g : p.E, y = Math.max(v, time.floor);
            const ax = full && full['yaxis' + m.shape.yref.slice(1)];
            const f = ax && ax._length ? Math.pow(10, time.ring_px * Math.abs(ax.range[1] - ax.range[0]) / ax._length) : 1.3;
            return Object.assign({}, m.shape, {xanchor: p.i, y0: y / f, y1: y * f, visible: Number.isFinite(v)});
        }));
    },

    /* A side figure about to be drawn: its shapes with the marks of the step in view (sized on
     * the axes on the page; redrawn once it is drawn, when its axes moved). */
    surfaceNowInto: function (time, fig) {
        const ns = window.dash_clientside.clipviz, st = ns.surfaceTimeState(time);
        const gd = document.querySelector('#' + time.ids.diag + ' .js-plotly-plot');
        if (st && st.steps) { fig.layout.shapes = ns.surfaceNowShapes(time, fig.layout.shapes, ns.surfaceTimePoints(st), gd); }
    },

    /* The legend of the surface's title layer: the second run named by the rule `rule`. */
    surfaceLegend: function (time, rule) {
        const gd = document.querySelector('#' + time.ids.titles + ' .js-plotly-plot');
        const name = time.legend.names[rule], i = time.legend.trace;
        if (gd && gd.data && name && gd.data[i].name !== name) { Plotly.restyle(gd, {name: name}, [i]); }
    },

    /* Draw the step in view on every figure, once per frame however often it is asked for;
     * `sideDrawn`: the side figure was just handed over with its marks (surfaceNowInto), so it is
     * left alone unless another request in the same frame asks for it. */
    surfaceTimeDraw: function (time, sideDrawn) {
        const ns = window.dash_clientside.clipviz, st = ns.surfaceTimeState(time);
        if (!st) { return; }
        st.skipDiag = !!sideDrawn && (st.frame ? st.skipDiag : true);
        if (st.frame) { return; }
        st.frame = requestAnimationFrame(() => { st.frame = 0; ns.surfaceTimeDrawNow(time, st); });
    },

    surfaceTimeDrawNow: function (time, st) {
        const dc = window.dash_clientside, ns = dc.clipviz, ids = time.ids;
        if (!st.steps || !document.getElementById(ids.time)) { return; }
        const gd = (id) => { const g = document.querySelector('#' + id + ' .js-plotly-plot'); return g && g.data ? g : null; };
        ns.surfaceTimeHover(time, st);
        const pts = ns.surfaceTimePoints(st), u = pts.u, c = pts.c;
        // the page's first draw may come before its figures are: again shortly (for 10 s at most)
        const now = gd(ids.now);
        if ((!now || !gd(ids.diag)) && (st.retries = (st.retries || 0) + 1) <= 100) {
            setTimeout(() => ns.surfaceTimeDraw(time), 100);
        }
        // the surface: the step layer's two markers (and its axes, when the window moved)
        if (now) {
            const lay = {};
            if (st.range && JSON.stringify([now.layout.xaxis.range, now.layout.yaxis.range]) !== JSON.stringify(st.range)) {
                lay['xaxis.range'] = st.range[0].slice();
                lay['yaxis.range'] = st.range[1].slice();
            }
            if (Object.keys(lay).length || now.data[0].x[0] !== u.w || now.data[0].y[0] !== u.b
                || now.data[1].x[0] !== c.w || now.data[1].y[0] !== c.b) {
                Plotly.update(now, {x: [[u.w], [c.w]], y: [[u.b], [c.b]]}, lay, [0, 1]);
            }
        }
        // the side figure: a line at the step, a ring on each descent's ‖g‖ and E
        const diag = gd(ids.diag);
        if (diag && !st.skipDiag) {
            const shapes = ns.surfaceNowShapes(time, diag.layout.shapes, pts, diag);
            const mine = (list) => JSON.stringify((list || []).filter(s => s.name === 'cv-now'));
            if (mine(shapes) !== mine(diag.layout.shapes)) { Plotly.relayout(diag, {shapes: shapes}); }
        }
        // the 3-D view, while shown: both descents (when they or the figure are new) and the markers
        const box = document.getElementById(ids['3d-box']), g3 = gd(ids['3d']);
        if (g3 && box && box.style.display !== 'none') {
            const lines = [], mark = g3.data.findIndex(t => t.uid === 'cv-now-3d');
            g3.data.forEach((t, i) => { if (t.type === 'scatter3d' && i !== mark) { lines.push(i); } });
            const z = (r) => Array.from(r.E, e => Math.max(e, time.floor));
            if (lines.length === 2 && (g3.__cvRaw !== st.raw || g3.__cvData !== g3.data)) {
                const R = [st.steps.u, st.steps.c];
                Plotly.restyle(g3, {x: R.map(r => Array.from(r.w)), y: R.map(r => Array.from(r.b)), z: R.map(z)}, lines);
                g3.__cvRaw = st.raw;
            }
            if (mark >= 0) {
                const want = [[u.w, c.w], [u.b, c.b], [Math.max(u.E, time.floor), Math.max(c.E, time.floor)]];
                const t = g3.data[mark];
                if (JSON.stringify([Array.from(t.x), Array.from(t.y), Array.from(t.z)]) !== JSON.stringify(want)) {
                    Plotly.restyle(g3, {x: [want[0]], y: [want[1]], z: [want[2]]}, [mark]);
                }
            }
            g3.__cvData = g3.data;
        }
        // the read-out: the step's w, b, E and ‖g‖ on each descent
        const fmt = (v) => !Number.isFinite(v) ? (Number.isNaN(v) ? '–' : '∞')
            : (v === 0 || (Math.abs(v) >= 1e-3 && Math.abs(v) < 1e5)) ? String(Number(v.toPrecision(4))) : v.toExponential(3);
        const line = (p) => p.name + ': step ' + p.i + (p.i < pts.k ? ' (its last)' : '') + ' · w = ' + fmt(p.w)
            + ', b = ' + fmt(p.b) + ', E = ' + fmt(p.E) + ', ‖g‖ = ' + fmt(p.g) + (p.fired ? ' (clipped)' : '');
        [[ids['step-u'], line(u)], [ids['step-c'], line(c)]].forEach(([id, text]) => {
            const el = document.getElementById(id);
            if (el && el.textContent !== text) { dc.set_props(id, {children: text}); }
        });
    },

    /* Hovering a step shows it on every figure: the pointer within time.hover_px of a step on the
     * surface, or on a step of the side figure or of the 3-D view's descents.  The listeners go on
     * each figure once (a figure drawn anew keeps its element). */
    surfaceTimeHover: function (time, st) {
        const ns = window.dash_clientside.clipviz, ids = time.ids;
        const gd = (id) => document.querySelector('#' + id + ' .js-plotly-plot');
        const hover = (i) => {
            const s = ns.surfaceTimeState(time);
            if (s && s.hover !== i) { s.hover = i; ns.surfaceTimeDraw(time); }
        };
        const surf = gd(ids.surface);
        if (surf && !surf.__cvHover) {
            surf.__cvHover = true;
            surf.addEventListener('mousemove', (e) => {
                const s = ns.surfaceTimeState(time), full = surf._fullLayout;
                if (!s || !s.steps || !full) { return; }
                const xa = full.xaxis, ya = full.yaxis, r = surf.getBoundingClientRect();
                const px = e.clientX - r.left - xa._offset, py = e.clientY - r.top - ya._offset;
                let best = null, dist = time.hover_px;
                [s.steps.u, s.steps.c].forEach(R => {
                    for (let i = 0; i < R.w.length; i++) {
                        const d = Math.hypot(xa.c2p(R.w[i]) - px, ya.c2p(R.b[i]) - py);
                        if (d < dist) { dist = d; best = i; }
                    }
                });
                hover(best);
            });
            surf.addEventListener('mouseleave', () => hover(null));
        }
        const diag = gd(ids.diag);
        if (diag && diag.on && !diag.__cvHover) {
            diag.__cvHover = true;
            diag.on('plotly_hover', (ev) => { const p = ev.points && ev.points[0]; if (p) { hover(Math.round(p.x)); } });
            diag.on('plotly_unhover', () => hover(null));
        }
        // a figure drawn anew from its Dash figure (not from this code) gets its marks back: a draw
        // that finds them in place changes nothing, so this does not go round
        [gd(ids.diag), gd(ids.now)].forEach(g => {
            if (g && g.on && !g.__cvAfter) { g.__cvAfter = true; g.on('plotly_afterplot', () => ns.surfaceTimeDraw(time)); }
        });
        const g3 = gd(ids['3d']);
        if (g3 && g3.on && !g3.__cvHover) {
            g3.__cvHover = true;
            g3.on('plotly_hover', (ev) => {
                const p = ev.points && ev.points[0];
                if (p && p.data.type === 'scatter3d' && p.data.uid !== 'cv-now-3d') { hover(p.pointNumber); }
            });
            g3.on('plotly_unhover', () => hover(null));
            // a new 3-D figure from the server: its descents and markers as the page has them
            g3.on('plotly_afterplot', () => { if (g3.__cvData !== g3.data) { ns.surfaceTimeDraw(time); } });
        }
    },

    /* The step slider (a clientside callback on its value): the step in view, on every figure.
     * Returns no_update. */
    surfaceStep: function (value, data) {
        const dc = window.dash_clientside, ns = dc.clipviz, st = ns.surfaceTimeState(data.time, data.steps);
        if (st && typeof value === 'number') {
            st.k = value;
            ns.surfaceTimeDraw(data.time);
            ns.surfaceLink(data.view, st);
        }
        return dc.no_update;
    },

    /* The play button: moves the step slider on, a step (or a stride of steps) a frame, to the
     * last step; pressed again, stops.  Returns the button's label. */
    surfacePlay: function (clicks, data) {
        const dc = window.dash_clientside, ns = dc.clipviz, time = data.time, play = time.play;
        const btn = document.getElementById(time.ids.play), st = ns.surfaceTimeState(time, data.steps);
        if (!btn || !st || !st.steps) { return dc.no_update; }
        if (btn.__cvTimer) { clearInterval(btn.__cvTimer); btn.__cvTimer = null; return play.labels[0]; }
        if (st.k >= ns.surfaceLastStep(st)) { st.k = 0; dc.set_props(time.ids.step, {value: 0}); }
        const timer = btn.__cvTimer = setInterval(() => {
            const s = ns.surfaceTimeState(time);
            if (!s || document.getElementById(time.ids.play) !== btn) { clearInterval(timer); return; }
            const last = ns.surfaceLastStep(s), k = Math.min(last, s.k + Math.max(1, Math.ceil(last / play.max_frames)));
            s.k = k;
            dc.set_props(time.ids.step, {value: k});
            if (k >= last) { clearInterval(timer); btn.__cvTimer = null; dc.set_props(time.ids.play, {children: play.labels[0]}); }
        }, play.frame_ms);
        return play.labels[1];
    },
});

/* A log slider's tooltip (clipviz.web.pages.surface.LOG_TOOLTIP): the slider holds log10 of its
 * parameter; the tooltip shows the parameter. */
window.dccFunctions = window.dccFunctions || {};
window.dccFunctions.clipvizExp10 = function (value) { return Number(Math.pow(10, value).toPrecision(3)); };
