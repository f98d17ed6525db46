"""What a client of the nodes uses: the HTTP client (JSON requests that wait
out 429 and 503 and refuse hostile answers) and the light client (a node's answer
checked against the genesis file).
"""
