"""`python -m crawlers.sample_site [--port 8765] [--new-every 60]`: serve until Ctrl-C."""

from __future__ import annotations

import argparse
import time

from crawlers.sample_site import SampleSite, serve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--new-every", type=float, default=60.0, help="seconds per new post")
    args = parser.parse_args()
    server = serve(SampleSite(new_every=args.new_every), args.host, args.port)
    print(f"sample site on http://{args.host}:{server.server_address[1]}/", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.shutdown()


if __name__ == "__main__":
    main()
