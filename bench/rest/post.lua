-- wrk script for bench/rest/run.sh: POST /items with a JSON body; every request creates an item.
wrk.method = "POST"
wrk.body = '{"name":"lamp","price":12.5}'
wrk.headers["Content-Type"] = "application/json"
