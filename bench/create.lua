-- POST /api/v1/sessions with no body: a server-generated id each time.
wrk.method = "POST"
