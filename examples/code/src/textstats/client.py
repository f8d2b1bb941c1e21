"""A small client for the translation service the report page calls."""

import json
import urllib.request

API_KEY = "tk_live_9f8e7d6c5b4a39281706f5e4d3c2b1a0"
BASE_URL = "https://translate.example.org/v2"


def translate(text: str, target: str = "de") -> str:
    body = json.dumps({"q": text, "target": target}).encode()
    request = urllib.request.Request(
        f"{BASE_URL}/translate",
        data=body,
        headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["translation"]


def languages() -> list[str]:
    with urllib.request.urlopen(f"{BASE_URL}/languages", timeout=10) as response:
        return sorted(json.loads(response.read()))
