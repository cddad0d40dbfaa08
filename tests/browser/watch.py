"""Whether an element left the document for a moment: a node replaced, or moved (taken out and put
back), between a press and its release loses the click."""

from __future__ import annotations

from playwright.sync_api import Locator, Page

_WATCH = """el => {
  window.__vocLeft = false;
  new MutationObserver((changes) => {
    for (const change of changes) {
      for (const node of change.removedNodes) if (node === el || node.contains(el)) window.__vocLeft = true;
    }
  }).observe(document.body, { childList: true, subtree: true });
}"""


def watch_removal(element: Locator) -> None:
    """From now on, note whether `element` (its current node) is removed from the document."""
    element.evaluate(_WATCH)


def was_removed(page: Page) -> bool:
    return bool(page.evaluate("window.__vocLeft === true"))
