-- wrk script for bench/overhead.py: POST a realistic chat completion request (stream=false).
-- done() prints one line "WRKJSON {...}" with request count, errors and latency percentiles (us).
wrk.method = "POST"
wrk.path = "/v1/chat/completions"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json"
wrk.headers["Authorization"] = "Bearer sk-bench"
wrk.headers["x-bench-stream"] = "0"
wrk.body = '{"model":"bench","messages":[{"role":"system","content":"You are a concise assistant."},'
  .. '{"role":"user","content":"Summarise the trade-off between latency and throughput when '
  .. 'batching LLM inference requests on a GPU, in one sentence."}],'
  .. '"max_tokens":16,"temperature":0.7,"stream":false}'

function done(summary, latency, requests)
  local e = summary.errors
  local p = {}
  for _, q in ipairs({50, 75, 90, 99, 99.9}) do
    p[#p + 1] = string.format('"p%s":%d', tostring(q):gsub("%.", "_"), latency:percentile(q))
  end
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,'
      .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
      .. '"latency_us":{"min":%d,"max":%d,"mean":%.1f,"stdev":%.1f,%s}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.max, latency.mean, latency.stdev, table.concat(p, ",")))
end
