import asyncio

from meshplane.store import ChangeFeed


async def test_wait_beyond_returns_at_once_when_already_past():
    feed = ChangeFeed(latest=5)
    assert await asyncio.wait_for(feed.wait_beyond(4), timeout=1) == 5


async def test_wait_beyond_wakes_on_publish_past_the_revision():
    feed = ChangeFeed()
    waiter = asyncio.create_task(feed.wait_beyond(1))
    feed.publish(1)  # not beyond 1: the waiter keeps waiting
    await asyncio.sleep(0)
    assert not waiter.done()
    feed.publish(3)
    assert await asyncio.wait_for(waiter, timeout=1) == 3


async def test_publish_ignores_older_revisions():
    feed = ChangeFeed()
    feed.publish(7)
    feed.publish(6)
    assert feed.latest == 7


async def test_many_waiters_wake_on_one_publish():
    feed = ChangeFeed()
    waiters = [asyncio.create_task(feed.wait_beyond(0)) for _ in range(10)]
    await asyncio.sleep(0)
    feed.publish(1)
    assert await asyncio.wait_for(asyncio.gather(*waiters), timeout=1) == [1] * 10


async def test_waiting_blocks_until_published():
    feed = ChangeFeed(latest=2)
    waiter = asyncio.create_task(feed.wait_beyond(2))
    done, _ = await asyncio.wait({waiter}, timeout=0.05)
    assert not done
    waiter.cancel()
