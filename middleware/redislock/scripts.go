package redislock

import "github.com/redis/go-redis/v9"

// Each script touches the one key KEYS[1], so it runs on a Redis Cluster
// as it does on a single node. PUBLISH takes no key: a Cluster forwards it
// to every node, where any replica's subscription hears it.

// acquireScript takes the lock KEYS[1] for token ARGV[1] with a lease of
// ARGV[2] ms. It returns 0 when taken, otherwise the holder's remaining
// lease in ms (-1 for a key without expiry), so that a waiter can sleep
// until that lease ends at most.
var acquireScript = redis.NewScript(`
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
	return 0
end
local t = redis.call('pttl', KEYS[1])
if t == -1 then
	return -1
end
if t < 1 then
	return 1
end
return t
`)

// releaseScript deletes KEYS[1] if it still holds token ARGV[1], and then
// publishes on the channel of the same name, waking the waiters of every
// replica. It returns 1 when released, 0 when the lock was no longer ours.
var releaseScript = redis.NewScript(`
if redis.call('get', KEYS[1]) == ARGV[1] then
	redis.call('del', KEYS[1])
	redis.call('publish', KEYS[1], '')
	return 1
end
return 0
`)

// renewScript sets the lease of KEYS[1] to ARGV[2] ms if it still holds
// token ARGV[1]. It returns 1 when renewed, 0 when the lock is gone.
var renewScript = redis.NewScript(`
if redis.call('get', KEYS[1]) == ARGV[1] then
	return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
`)
