/* clipviz: the browser code of the pages, shared by all of them.
 *
 * Clientside callbacks under window.dash_clientside.clipviz, registered from Python with
 * clipviz.web.components.clientside.  Whatever a function needs to know of a page (its controls'
 * keys in the link, component ids, bounds) comes from the page as data, its last argument
 * (clipviz.web.components.page_data): nothing here repeats what the Python code owns.
 */
window.dash_clientside = window.dash_clientside || {};
window.dash_clientside.clipviz = Object.assign({}, window.dash_clientside.clipviz, {

    /* An address inside the app: the app's path prefix (Dash's config) and `path`. */
    appPath: function (path) {
        const cfg = JSON.parse(document.getElementById('_dash-config').textContent);
        return (cfg.requests_pathname_prefix || '/') + path.replace(/^\//, '');
    },

    /* The query string of a link from the controls' `values`, each written as its field says
     * (clipviz.web.components.url_field): {key} as it is, a checklist as 1 / 0; {key: [lo, hi]} a
     * range's two ends; {key, exp10: digits} 10 ** value to that many significant digits.  Empty
     * values are left out. */
    urlQuery: function (fields, values) {
        const q = new URLSearchParams();
        const put = (k, v) => { if (v !== null && v !== undefined && v !== '') { q.set(k, v); } };
        fields.forEach((f, i) => {
            const v = values[i];
            if (Array.isArray(f.key)) {
                if (Array.isArray(v)) { f.key.forEach((k, j) => put(k, v[j])); }
            } else if (f.exp10 !== undefined) {
                if (typeof v === 'number') { put(f.key, Number(Math.pow(10, v).toPrecision(f.exp10))); }
            } else {
                put(f.key, Array.isArray(v) ? (v.length ? 1 : 0) : v);
            }
        });
        return q.toString();
    },

    /* The page's link: every control's value in the query string of the address bar
     * (history.replaceState: no navigation, no re-render), while the page is shown; returns the
     * full link.  Arguments: the controls' values, then the page's data {link: {path, fields}}. */
    urlSync: function (...args) {
        const ns = window.dash_clientside.clipviz, link = args.pop().link;
        const url = window.location.pathname + '?' + ns.urlQuery(link.fields, args);
        if (window.location.pathname === ns.appPath(link.path)) {
            window.history.replaceState(window.history.state, '', url);
        }
        return window.location.origin + url;
    },

    /* A click on a graph sets controls to the clicked point: one per entry of the page's data
     * {click: [{axis, lo, hi, digits}]}, rounded and clamped to the control's bounds. */
    clickPoint: function (click, data) {
        const dc = window.dash_clientside;
        if (!click || !click.points || !click.points.length) { return data.click.map(() => dc.no_update); }
        const pt = click.points[0];
        return data.click.map(a => {
            const f = Math.pow(10, a.digits);
            return Math.max(a.lo, Math.min(a.hi, Math.round(pt[a.axis] * f) / f));
        });
    },

    /* A click on the training page's ‖g‖ curve: a ring (a kept update, whose point carries
     * [run id, update] as customdata) opens the error surface there by setting the slice's run
     * and update; a click anywhere else changes nothing. */
    sliceClick: function (click) {
        const dc = window.dash_clientside;
        const pts = (click && click.points) || [];
        const pt = pts.find(p => Array.isArray(p.customdata) && p.customdata.length === 2);
        if (!pt) { return [dc.no_update, dc.no_update]; }
        return [String(pt.customdata[0]), String(pt.customdata[1])];
    },

    /* A gate: passes a change of its inputs on (as the time, always a new value) while its first
     * input, a checklist, is ticked, and when that checklist itself changes. */
    whileTicked: function (toggle) {
        const dc = window.dash_clientside, own = dc.callback_context.inputs_list[0].id + '.';
        const trig = (dc.callback_context.triggered || []).map(t => t.prop_id);
        if (!(toggle || []).length && !trig.some(p => p.startsWith(own))) { return dc.no_update; }
        return Date.now();
    },
});
