/* clipviz: the error-surface page's browser code (clipviz.web.pages.surface).
 *
 * The page's data (its last argument) says which controls there are, their names in the link and
 * in the view endpoint's body, which figures a change of each redraws, and the ids of the figures
 * and message lines: {view: ..., export: ...} (clipviz.web.pages.surface.page_data).
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
        const dc = window.dash_clientside, ns = dc.clipviz, view = args.pop().view, ids = view.ids;
        // the link: every control, written to the address bar and the copy-link box once the
        // controls rest (400 ms without a change), so that it never competes with drawing a change
        const path = window.location.pathname;
        const url = path + '?' + ns.urlQuery(view.controls.map(c => c.url), args);
        clearTimeout(window.__clipvizUrlTimer);
        window.__clipvizUrlTimer = setTimeout(() => {
            if (window.location.pathname !== path) { return; }  // the user went to another page meanwhile
            if (window.location.pathname + window.location.search !== url) {
                window.history.replaceState(window.history.state, '', url);
            }
            // the copy-link box: set here, once the controls rest, rather than as this callback's
            // output, which costs Dash main-thread time right after the request leaves
            const box = document.getElementById(ids.link), link = window.location.origin + url;
            if (box && box.value !== link) { dc.set_props(ids.link, {value: link}); }
        }, 400);

        // which figures the change needs (none on the first call: the page came with them)
        const changed = (dc.callback_context.triggered || []).map(t => t.prop_id.split('.')[0]);
        const names = view.controls.filter(c => changed.includes(c.id)).map(c => c.name);
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
            if (!out.diag) { return; }
            const surf = document.getElementById(ids.surface);
            const busy = () => { const gd = surf && surf.querySelector('.js-plotly-plot');
                                 return !!gd && gd.classList.contains('dash-graph--pending'); };
            const t0 = performance.now();
            const draw = () => {
                if (!current()) { return; }
                if (out.surface && busy() && performance.now() - t0 < 1000) { setTimeout(draw, 4); return; }
                dc.set_props(ids.diag, {figure: out.diag});
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
            layout = titled(Object.assign({}, base.layout, {height: size.height, width: size.width}));
            data = base.data;
        } else {
            const top = gd(fig.layers.paths), frame = gd(fig.layers.frame);
            layout = titled(Object.assign({}, frame.layout, {
                showlegend: true, legend: fig.legend, annotations: top.layout.annotations,
                height: size.height, width: size.width,
                title: Object.assign({text: document.getElementById(fig.layers.title).textContent}, fig.title)}));
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
});
