"""The text reports of ``etalon drift fit|adev|chart`` in English and Vietnamese (the ``--json``
output is the stable machine format and is never translated)."""

from __future__ import annotations

from core.i18n import MessageTable, register

DRIFT_MESSAGES: MessageTable = {
    # fit
    "drift.fit.head": {
        "en": "Drift fit: {model}, {weighting}, {n} points, {dof} degrees of freedom",
        "vi": "Khớp độ trôi: {model}, {weighting}, {n} điểm, số bậc tự do {dof}",
    },
    "drift.model.mean": {"en": "mean", "vi": "trung bình"},
    "drift.model.linear": {"en": "linear", "vi": "tuyến tính"},
    "drift.model.quadratic": {"en": "quadratic", "vi": "bậc hai"},
    "drift.ols": {
        "en": "ordinary least squares",
        "vi": "bình phương tối thiểu thông thường",
    },
    "drift.wls": {
        "en": "weighted least squares ({weighting})",
        "vi": "bình phương tối thiểu có trọng số ({weighting})",
    },
    "drift.infinite": {"en": "infinite", "vi": "vô hạn"},
    "drift.x_in_days": {"en": " (x in days)", "vi": " (x tính bằng ngày)"},
    "drift.per_day": {"en": " per day", "vi": " mỗi ngày"},
    "drift.per_x": {"en": " per x unit", "vi": " mỗi đơn vị x"},
    "drift.per_year": {"en": " per year", "vi": " mỗi năm"},
    "drift.term.intercept": {"en": "intercept", "vi": "hệ số chặn"},
    "drift.term.slope": {"en": "slope", "vi": "độ dốc"},
    "drift.term.curvature": {"en": "curvature", "vi": "độ cong"},
    "drift.at_x0": {"en": " (value at x0)", "vi": " (giá trị tại x0)"},
    "drift.correlation": {
        "en": "correlation(intercept, slope) = {value}",
        "vi": "tương quan(hệ số chặn, độ dốc) = {value}",
    },
    "drift.residual_sd": {
        "en": "residual standard deviation = {value}",
        "vi": "độ lệch chuẩn của phần dư = {value}",
    },
    "drift.birge": {
        "en": "Birge ratio = {ratio} (chi2 = {chi2})",
        "vi": "tỉ số Birge = {ratio} (chi2 = {chi2})",
    },
    "drift.selection": {
        "en": "Model selection (alpha = {alpha}):",
        "vi": "Chọn mô hình (alpha = {alpha}):",
    },
    "drift.selection.step": {
        "en": "{model} {term}: |t| = {t}, critical {critical} -> {verdict}",
        "vi": "{model}, số hạng {term}: |t| = {t}, giá trị tới hạn {critical} -> {verdict}",
    },
    "drift.significant": {"en": "significant", "vi": "có ý nghĩa"},
    "drift.not_significant": {"en": "not significant", "vi": "không có ý nghĩa"},
    "drift.chosen": {"en": "chosen: {model}", "vi": "mô hình được chọn: {model}"},
    "drift.prediction": {
        "en": "Prediction at {at}{extrapolated}:",
        "vi": "Dự đoán tại {at}{extrapolated}:",
    },
    "drift.extrapolated": {"en": " (extrapolated)", "vi": " (ngoại suy)"},
    "drift.prediction.values": {
        "en": "value = {value}, u(fit) = {u_fit}, u(prediction) = {u_prediction}, k = {k}",
        "vi": "giá trị = {value}, u(đường khớp) = {u_fit}, u(dự đoán) = {u_prediction}, k = {k}",
    },
    "drift.ci": {
        "en": "{percent} confidence interval  [{low}, {high}]",
        "vi": "khoảng tin cậy {percent}  [{low}, {high}]",
    },
    "drift.pi": {
        "en": "{percent} prediction interval  [{low}, {high}]",
        "vi": "khoảng dự đoán {percent}  [{low}, {high}]",
    },
    "drift.in_use": {
        "en": "Value in use: {value} ± {expanded} (k = {k}, {percent}; standard uncertainty {u})",
        "vi": "Giá trị sử dụng: {value} ± {expanded} (k = {k}, {percent}; độ không đảm bảo "
        "đo chuẩn {u})",
    },
    "drift.tolerance": {
        "en": "Tolerance {nominal} ± {half}: ",
        "vi": "Dung sai {nominal} ± {half}: ",
    },
    "drift.tolerance.outside": {
        "en": "the {percent} prediction interval is already outside at {start}.",
        "vi": "khoảng dự đoán {percent} đã nằm ngoài dung sai tại {start}.",
    },
    "drift.tolerance.inside": {
        "en": "the {percent} prediction interval stays inside until {until}.",
        "vi": "khoảng dự đoán {percent} vẫn nằm trong dung sai đến {until}.",
    },
    "drift.tolerance.crossing": {
        "en": "the {percent} prediction interval reaches the {side} limit at {when} "
        "({span} after {start}).",
        "vi": "khoảng dự đoán {percent} chạm giới hạn {side} tại {when} ({span} sau {start}).",
    },
    "drift.side.upper": {"en": "upper", "vi": "trên"},
    "drift.side.lower": {"en": "lower", "vi": "dưới"},
    "drift.days": {"en": "{days} days", "vi": "{days} ngày"},
    # adev
    "drift.adev.adev": {
        "en": "Allan deviation (non-overlapping)",
        "vi": "Độ lệch Allan (không chồng lấp)",
    },
    "drift.adev.oadev": {"en": "Overlapping Allan deviation", "vi": "Độ lệch Allan chồng lấp"},
    "drift.adev.mdev": {"en": "Modified Allan deviation", "vi": "Độ lệch Allan cải biên"},
    "drift.adev.frequency": {"en": "frequency data", "vi": "dữ liệu tần số"},
    "drift.adev.phase": {"en": "phase data", "vi": "dữ liệu pha"},
    "drift.adev.head": {
        "en": "{title}, {data}, {n} values at {rate} Hz; {confidence} % confidence intervals",
        "vi": "{title}, {data}, {n} giá trị ở {rate} Hz; khoảng tin cậy {confidence} %",
    },
    "drift.adev.columns": {
        "en": "tau/s|m|deviation|ci low|ci high|edf|noise",
        "vi": "tau/s|m|độ lệch|KTC dưới|KTC trên|bậc tự do|nhiễu",
    },
    "drift.noise.white PM": {"en": "white PM", "vi": "PM trắng"},
    "drift.noise.flicker PM": {"en": "flicker PM", "vi": "PM nhấp nháy"},
    "drift.noise.white FM": {"en": "white FM", "vi": "FM trắng"},
    "drift.noise.flicker FM": {"en": "flicker FM", "vi": "FM nhấp nháy"},
    "drift.noise.random-walk FM": {"en": "random-walk FM", "vi": "FM bước ngẫu nhiên"},
    "drift.alpha.identified": {"en": "identified", "vi": "nhận dạng từ dữ liệu"},
    "drift.alpha.carried": {"en": "carried", "vi": "lấy từ tau trước"},
    "drift.alpha.assumed": {"en": "assumed", "vi": "giả định"},
    "drift.alpha.given": {"en": "given", "vi": "do người dùng cho"},
    # chart
    "drift.chart.head": {
        "en": "Individuals chart, {n} points; limits from the first {baseline}:",
        "vi": "Biểu đồ giá trị riêng lẻ, {n} điểm; giới hạn tính từ {baseline} điểm đầu:",
    },
    "drift.chart.limits": {
        "en": "centre {center}, sigma {sigma} (MR-bar {mr_bar} / 1.128), UCL {ucl}, "
        "LCL {lcl}; MR UCL {mr_ucl}",
        "vi": "đường tâm {center}, sigma {sigma} (MR trung bình {mr_bar} / 1.128), "
        "UCL {ucl}, LCL {lcl}; UCL của MR {mr_ucl}",
    },
    "drift.chart.violations": {
        "en": "Nelson rule violations: {n}",
        "vi": "Vi phạm quy tắc Nelson: {n}",
    },
    "drift.chart.point": {
        "en": "point {number} (line {line})",
        "vi": "điểm {number} (dòng {line})",
    },
    "drift.chart.violation": {
        "en": "{point}: rule {rule}: {name}{side}; value {value}, pattern from point {first}",
        "vi": "{point}: quy tắc {rule}: {name}{side}; giá trị {value}, mẫu bắt đầu từ điểm {first}",
    },
    "drift.chart.side.above": {"en": "above", "vi": "phía trên"},
    "drift.chart.side.below": {"en": "below", "vi": "phía dưới"},
    "drift.chart.side.rising": {"en": "rising", "vi": "tăng dần"},
    "drift.chart.side.falling": {"en": "falling", "vi": "giảm dần"},
    "drift.chart.moving_range": {
        "en": "{point}: moving range {value} above MR UCL",
        "vi": "{point}: khoảng biến thiên liên tiếp {value} vượt UCL của MR",
    },
    "drift.chart.ewma": {
        "en": "EWMA (lambda {lambda_}, L {L}): {n} points beyond limits",
        "vi": "EWMA (lambda {lambda_}, L {L}): {n} điểm vượt giới hạn",
    },
    "drift.chart.cusum": {
        "en": "CUSUM (k {k} sigma, h {h} sigma): {n} signals",
        "vi": "CUSUM (k {k} sigma, h {h} sigma): {n} tín hiệu",
    },
    "drift.chart.first": {"en": ", first {point}", "vi": ", đầu tiên tại {point}"},
}

register(DRIFT_MESSAGES)
