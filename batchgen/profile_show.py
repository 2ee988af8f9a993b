"""Text of ``batchgen profiles``: the built-in profiles at a glance, or one profile in full.

Everything shown comes from the profile's data, so a user's own profile file is described
the same way as a built-in one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from batchgen.profile import Profile
from batchgen.profile_files import builtin_profile_names, load_profile
from batchgen.profile_traits import HttpMeaning, NotFound, VideoLocation


def profile_list() -> str:
    """One line per built-in profile: name, what it is for, whether it lists, seconds."""
    profiles = [load_profile(name) for name in builtin_profile_names()]
    width = max(len(p.name) for p in profiles)
    lines = [_list_line(p, width) for p in profiles]
    lines.append("details: batchgen profiles NAME (or the path of your own profile file)")
    return "\n".join(lines)


def _list_line(profile: Profile, width: int) -> str:
    lists = "lists jobs" if profile.can_list else "no list"
    seconds = profile.defaults.get("seconds", "?")
    return f"{profile.name:<{width}}  {profile.summary or '-'}  [{lists}; default {seconds} s]"


def profile_details(name_or_path: str) -> str:
    """Everything ``name_or_path``'s profile says: what it accepts and how its API behaves."""
    profile = load_profile(name_or_path)
    sections = [
        [f"profile {profile.name}" + (f": {profile.summary}" if profile.summary else "")],
        _accepts(profile),
        _prices(profile),
        _extra_fields(profile),
        _capabilities(profile),
    ]
    return "\n".join(line for section in sections for line in section)


def _accepts(profile: Profile) -> list[str]:
    lines = ["models and sizes:"]
    lines += [f"  {model}: {_join(sizes)}" for model, sizes in profile.models.items()]
    if profile.other_models:
        lines.append("  other models: allowed (any WIDTHxHEIGHT size; validate warns)")
    defaults = ", ".join(f"{k} {v}" for k, v in profile.defaults.items())
    lines += [f"seconds: {_join(profile.seconds)}", f"defaults: {defaults or 'none'}"]
    renamed = {k: v for k, v in profile.field_names.items() if k != v}
    if renamed or profile.image_field != "input_reference":
        sent = [f"{ours} as {theirs}" for ours, theirs in renamed.items()]
        sent.append(f"image as {profile.image_field}")
        lines.append(f"request fields: {', '.join(sent)}")
    return lines


def _prices(profile: Profile) -> list[str]:
    if not profile.prices:
        return ["prices: none (add prices: to a profile of your own for cost estimates)"]
    lines = ["prices (USD per second of video):"]
    for model, by_size in profile.prices.items():
        sizes = ", ".join(f"{'any size' if s == '*' else s} ${p:.2f}" for s, p in by_size.items())
        lines.append(f"  {model}: {sizes}")
    return lines


def _extra_fields(profile: Profile) -> list[str]:
    if not profile.extra_fields:
        return ["extra fields: none"]
    lines = ["extra fields (sent only when set):"]
    lines += [f"  {f.name}: {f.describe_allowed() or 'any'}" for f in profile.extra_fields.values()]
    return lines


def _capabilities(profile: Profile) -> list[str]:
    refresh = f"every {profile.refresh_seconds:g} s" if profile.refresh_seconds else "at once"
    lines = [
        "capabilities:",
        f"  lists jobs: {_yes(profile.can_list)} ({_lookup(profile.can_list)})",
        f"  honours Idempotency-Key: {_yes(profile.honours_idempotency_key)}",
        f"  status refreshes: {refresh} (polls are never faster)",
        f"  jobs running at once per key: {_running_cap(profile.max_running)}",
        f"  video: {_video(profile.video)}",
        f"  previews: {_join(profile.video.previews) or 'none'}",
        f"  no such job: {_not_found(profile.not_found)}",
        f"  content not ready yet: HTTP {_join(map(str, sorted(profile.not_ready)))}",
        *_http(profile.http),
        f"  status words: {_statuses(profile.statuses)}",
    ]
    if profile.retired:
        lines.append(f"  retired: {profile.retired}")
    return lines


def _running_cap(max_running: int | None) -> str:
    if max_running is None:
        return "no cap"
    return f"at most {max_running} (max_running: run sends more only as jobs finish)"


def _lookup(can_list: bool) -> str:
    if can_list:
        return "a create whose answer was lost is looked up"
    return "a create whose answer was lost cannot be looked up: it becomes unresolved"


def _video(video: VideoLocation) -> str:
    where = []
    if video.url_fields:
        where.append(f"the link at {_join(video.url_fields)} of the retrieve answer")
    if video.content_endpoint:
        where.append("GET /videos/{id}/content")
        if video.content_says_not_ready:
            where[-1] += ' ("not ready" until done: a job surely done is fetched unpolled)'
    text = ", else ".join(where) or "nowhere known"
    if video.json_link_fields:
        text += f" (a JSON download answer's link at {_join(video.json_link_fields)} is followed)"
    return text


def _not_found(not_found: NotFound) -> str:
    statuses = f"HTTP {_join(map(str, sorted(not_found.statuses)))}"
    codes = _join(sorted(not_found.codes))
    return f"{statuses}, or an error code {codes}" if codes else statuses


def _http(http: HttpMeaning) -> list[str]:
    return [
        f"  HTTP retried (nothing was made): {_join(map(str, sorted(http.retry)))}",
        f"  HTTP maybe made (looked up, never resent blindly): "
        f"{_join(map(str, sorted(http.maybe_made)))}",
        "  any other 4xx/5xx: final",
    ]


def _statuses(statuses: Mapping[str, str]) -> str:
    by_ours: dict[str, list[str]] = {}
    for word, ours in statuses.items():
        by_ours.setdefault(ours, []).append(word)
    return "; ".join(f"{ours} <- {_join(words)}" for ours, words in by_ours.items())


def _join(items: Iterable[str]) -> str:
    return ", ".join(items)


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"
