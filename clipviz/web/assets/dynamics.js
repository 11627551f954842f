/* clipviz: browser code of the dynamics pages (bifurcations), registered from Python with
 * clipviz.web.components.clientside (see clipviz.js for the conventions). */
window.dash_clientside = window.dash_clientside || {};
window.dash_clientside.clipviz = Object.assign({}, window.dash_clientside.clipviz, {

    /* The value a slider is being dragged to, only while the drag is ahead of the slider's value:
     * a key press sets drag_value and value together and needs no coarse preview, so it sends
     * no request for one.  Arguments: drag_value, value, the page's data (unused). */
    dragAhead: function (drag, value) {
        const nu = window.dash_clientside.no_update;
        return (drag === null || drag === undefined || drag === value) ? nu : drag;
    },
});
