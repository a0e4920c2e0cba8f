// The documents fleet telemetry publishes (retained, one line of JSON each), and its
// /metrics lines. Pure rendering from what /status shows; net/telemetry.h sends them.
//
//   <prefix>/<device>/status               telemetry_status_doc (the status page's verdict
//                                          and counts) or, as the last will, the offline doc
//   <prefix>/<device>/endpoints/<name>     telemetry_endpoint_doc (state, why, score, ...)
#pragma once
#include <stdint.h>

#include "core/metrics.h"
#include "core/strbuf.h"

namespace ew {

// What made an endpoint document: a state change (from -> the state now, observed by
// `cause`: "probe", "traffic", "time") or nothing (periodic, on connect).
struct TelemetryChange {
    bool changed = false;
    HealthState from = HealthState::healthy;
    const char* cause = "";
};

// {"device":D,"online":true,"verdict":"serving"|"fallback"|"not_serving","via":NAME|null,
//  "why":"...","endpoints":N,"healthy":N,"degraded":N,"down":N,"rate_limited":N,"unresolved":N,
//  "requests":N,"failed":N,"fallbacks":N,"uptime_s":N,"version":"x.y.z","time":UNIX_S}
// The verdict is status_verdict()'s (the status page headline); "time" only with a wall clock
// (v.process.wall_ms).
void telemetry_status_doc(const MetricsView& v, const char* device, StrBuf* out);
// {"device":D,"online":false,"verdict":"offline"}: the last will.
void telemetry_offline_doc(const char* device, StrBuf* out);
// {"device":D,"endpoint":NAME,"state":"DOWN","why":"...","score":0.0,"latency_ewma_ms":12.5,
//  "last_result":"connect"|null,"last_result_age_ms":N|null,"http_status":N,"in_state_ms":N,
//  "transitions":N,"ejections":N,"key_bad":false,"rate_limited_for_ms":N,"requests":N,
//  "change":{"from":"HEALTHY","to":"DOWN","cause":"probe"}|null,"time":UNIX_S}
void telemetry_endpoint_doc(const MetricsView& v, const char* device, uint32_t e, const TelemetryChange& change,
                            StrBuf* out);

// edgeway_telemetry_* series (nothing when telemetry is off).
void telemetry_render_metrics(const TelemetryStats& t, StrBuf* out);

}  // namespace ew
