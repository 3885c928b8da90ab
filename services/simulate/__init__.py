"""A seeded, deterministic CRM simulator: `world` generates events, `feed` posts them."""

from services.simulate.feed import FeedError, FeedResult, feed_live, post_events, write_jsonl
from services.simulate.world import DEFAULT_STAGES, live, simulate

__all__ = ["DEFAULT_STAGES", "FeedError", "FeedResult", "feed_live", "live", "post_events",
           "simulate", "write_jsonl"]
