"""Request parsing for the API: JSON only, and small."""

from rest_framework.parsers import JSONParser

from payments_project.errors import InvalidInput

# The API's own bodies are small: anything larger is refused before it is read.
MAX_BODY_BYTES = 16 * 1024


class LimitedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        request = (parser_context or {}).get("request")
        length = request.META.get("CONTENT_LENGTH", "") if request is not None else ""
        if length.isdigit() and int(length) > MAX_BODY_BYTES:
            raise RequestTooLarge(f"The request body is over {MAX_BODY_BYTES} bytes.")
        return super().parse(stream, media_type, parser_context)


class RequestTooLarge(InvalidInput):
    code = "request_too_large"
    http_status = 413
