/* When the server cannot be reached, say so and recover without a reload.

   A callback request (/_dash-update-component) that fails because the network or the server
   is down (fetch rejects, or a gateway answers 502/503/504) is not handed back to Dash as a
   failure: a banner says 无法连接服务器 and the same request is sent again, every 2 s and then
   less often, until it is answered; then the banner goes and Dash updates the page as if
   nothing had happened. A 500 (the server is up but failed) is not retried: the banner says
   so until the next answered request. The banner's text is fixed here; nothing from a
   response is put into the page. */
(function () {
    if (!window.fetch) { return; }
    var original = window.fetch.bind(window);
    var BANNER = "connection-banner";

    function banner(kind) {
        var node = document.getElementById(BANNER);
        if (!kind) {
            if (node) { node.remove(); }
            return;
        }
        if (!node) {
            node = document.createElement("div");
            node.id = BANNER;
            node.setAttribute("role", "alert");
            document.body.appendChild(node);
        }
        node.className = "connection-banner connection-" + kind;
        node.textContent = kind === "down"
            ? "无法连接服务器，正在重试…（网络恢复后页面会自动更新，无需刷新）"
            : "服务器处理请求时出错，请稍后再试；如持续出现，请联系管理员。";
    }

    function isCallback(resource) {
        var url = typeof resource === "string" ? resource : (resource && resource.url) || "";
        return url.indexOf("/_dash-update-component") !== -1;
    }

    function unreachable(response) {
        return response.status === 502 || response.status === 503 || response.status === 504;
    }

    function retry(resource, init, wait) {
        return new Promise(function (resolve) {
            window.setTimeout(function () {
                original(resource, init).then(function (response) {
                    if (unreachable(response)) {
                        resolve(retry(resource, init, Math.min(wait * 2, 10000)));
                        return;
                    }
                    banner(response.status >= 500 ? "error" : null);
                    resolve(response);
                }, function () {
                    resolve(retry(resource, init, Math.min(wait * 2, 10000)));
                });
            }, wait);
        });
    }

    window.fetch = function (resource, init) {
        if (!isCallback(resource)) { return original(resource, init); }
        return original(resource, init).then(function (response) {
            if (unreachable(response)) {
                banner("down");
                return retry(resource, init, 2000);
            }
            banner(response.status >= 500 ? "error" : null);
            return response;
        }, function (error) {
            if (init && init.signal && init.signal.aborted) { throw error; }
            banner("down");
            return retry(resource, init, 2000);
        });
    };
})();
