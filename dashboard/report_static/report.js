// 扫码上报: the optional "use my location" button fills the hidden lat/lon fields (WGS-84).
(function () {
  var button = document.getElementById("report-locate");
  if (!button || !navigator.geolocation) { if (button) { button.hidden = true; } return; }
  button.addEventListener("click", function () {
    var note = document.getElementById("report-locate-note");
    note.textContent = "正在获取位置…";
    navigator.geolocation.getCurrentPosition(function (position) {
      document.getElementById("report-lat").value = position.coords.latitude.toFixed(6);
      document.getElementById("report-lon").value = position.coords.longitude.toFixed(6);
      note.textContent = "已获取位置";
    }, function () { note.textContent = "未能获取位置（不影响提交）"; },
    { enableHighAccuracy: true, timeout: 10000 });
  });
})();
