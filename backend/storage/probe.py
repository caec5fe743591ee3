"""Read the duration of a staged audio or video file (for pricing by measured seconds)."""

from __future__ import annotations

from pathlib import Path

import av

from backend.http.errors import BadRequest


def media_duration_seconds(path: Path, *, field: str) -> float:
    """The container's duration, else the longest stream's; 0.0 when neither is known.

    A file FFmpeg cannot open is refused here, at submit, naming its field: nothing is charged.
    """
    try:
        with av.open(str(path)) as container:
            if container.duration is not None:
                return float(container.duration / av.time_base)
            longest = 0.0
            for stream in container.streams:
                if stream.duration is not None and stream.time_base is not None:
                    longest = max(longest, float(stream.duration * stream.time_base))
            return longest
    except av.error.FFmpegError as exc:
        raise BadRequest(
            f"{field}: the file is not decodable media ({exc.strerror})",
            details={
                "errors": [{"field": field, "rule": "decodable", "message": str(exc.strerror)}]
            },
        ) from exc
