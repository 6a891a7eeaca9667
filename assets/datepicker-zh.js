/* Every user reads Chinese: the date pickers (Dash 4, date-fns) take the locale of the
   browser's languages from window.dateFns.locale, so each of the browser's languages is
   pointed at zh-CN (assets/date-fns-zh-CN.js, loaded just before this file): 一 二 三 …,
   2025年6月, weeks from Monday, whatever language the browser is set to. */
(function () {
    var fns = window.dateFns || {};
    var locales = fns.locale || {};
    if (!locales.zhCN) { return; }
    (navigator.languages || [navigator.language || "en"]).forEach(function (tag) {
        var name = String(tag || "");
        locales[name.replace("-", "")] = locales.zhCN;
        locales[name.split("-")[0]] = locales.zhCN;
    });
    fns.locale = locales;
    window.dateFns = fns;
})();
