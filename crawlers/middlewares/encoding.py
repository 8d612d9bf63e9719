"""Page encodings: the source's forced one, else what the headers or meta tags declare,
else detection. Chinese sites often declare nothing and serve GBK; decoding that as
UTF-8 would turn every post into mojibake."""

from __future__ import annotations

from charset_normalizer import from_bytes
from scrapy import Request
from scrapy.http import Response, TextResponse
from w3lib.encoding import html_body_declared_encoding, http_content_type_encoding

from crawlers.context import CrawlComponent

# GB2312 and GBK pages routinely contain characters only GB18030 has; it is a superset.
_WIDEN = {"gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "gb_2312-80": "gb18030"}


def widen(encoding: str) -> str:
    return _WIDEN.get(encoding.lower().replace("_", "-"), encoding)


def declared_encoding(response: TextResponse) -> str | None:
    header = response.headers.get(b"Content-Type")
    found = http_content_type_encoding(header.decode("latin-1")) if header else None
    return found or html_body_declared_encoding(response.body)


def detect_encoding(body: bytes) -> str:
    """UTF-8 when the bytes are valid UTF-8, else the detector's best guess (GB18030 for
    anything Chinese-looking it cannot place)."""
    try:
        body.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    best = from_bytes(body[:65536]).best()
    if best is None:
        return "gb18030"
    return widen(best.encoding)


class EncodingMiddleware(CrawlComponent):
    def process_response(self, request: Request, response: Response) -> Response:
        if not isinstance(response, TextResponse) or not response.body:
            return response
        forced = self.spider.source.encoding
        if forced:
            return response.replace(encoding=widen(forced))
        declared = declared_encoding(response)
        if declared:
            return response.replace(encoding=widen(declared))
        return response.replace(encoding=detect_encoding(response.body))
