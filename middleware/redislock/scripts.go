package redislock

import "github.com/redis/go-redis/v9"

// Each script touches the one key KEYS[1], so it runs on a Redis Cluster
// as it does on a single node. PUBLISH takes no key: a Cluster forwards it
// to every node, where any replica's subscription hears it.
//
// The value of a lock key is one of
//
//	TOKEN           held by the holder whose token it is
//	TOKEN|P1,P2     held, and processes P1, then P2, wait for it in Redis
//	@P1             released and reserved for process P1, the first waiter
//	@P1|P2          reserved for P1, and P2 waits after it
//
// where a token is "PID.RANDOM" (the holder's process ID, a random 64-bit
// number in hex per Locker, then a random 128-bit one per lock taken), and
// the list after "|" is the queue of the processes that found the lock
// taken, in the order they first found it so. The queue is what makes the
// lock fair across processes: a release with a queue does not free the key
// but reserves it, for Lease, for the first process of the queue, so that
// the releasing process (whose next update tries at once, while the others
// still wait for the release message) cannot take it back. A reservation
// that its process does not take within Lease (a process that crashed
// while waiting) ends with the key, as a crashed holder's lock does; the
// queue is then lost, and the waiters queue again at their next try.

// luaHelpers defines the Lua functions the scripts share: split, and
// setKeepingTTL for the scripts that rewrite a value and must keep the
// time it has left.
const luaHelpers = `
-- split returns a lock key's value v as its head (a token, or @ and a
-- process ID) and its queue (the process IDs after '|', or '').
local function split(v)
	local bar = string.find(v, '|', 1, true)
	if not bar then
		return v, ''
	end
	return string.sub(v, 1, bar - 1), string.sub(v, bar + 1)
end

-- setKeepingTTL rewrites key's value and keeps the time it has left, t
-- (its PTTL): a key with under a millisecond left (PTTL 0) keeps one, never
-- none, or a lock of a dead holder would never end; -1 is no expiry.
local function setKeepingTTL(key, value, t)
	if t == -1 then
		redis.call('set', key, value)
	else
		redis.call('set', key, value, 'PX', math.max(t, 1))
	end
end
`

// acquireScript takes the lock KEYS[1] for token ARGV[1] of process
// ARGV[3] with a lease of ARGV[2] ms: when the key is absent, or reserved
// for this process. Otherwise it puts the process at the end of the queue
// (unless it is queued already, or is the holder) and returns the holder's
// (or the reservation's) remaining time in ms (-1 for a key without
// expiry), so that a waiter can sleep until then at most. It returns 0
// when the lock is taken.
var acquireScript = redis.NewScript(luaHelpers + `
local v = redis.call('get', KEYS[1])
if not v then
	redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2])
	return 0
end
local head, q = split(v)
local me = ARGV[3]
if head == '@' .. me then
	local nv = ARGV[1]
	if q ~= '' then
		nv = nv .. '|' .. q
	end
	redis.call('set', KEYS[1], nv, 'PX', ARGV[2])
	return 0
end
local t = redis.call('pttl', KEYS[1])
local owner = head
if string.sub(head, 1, 1) == '@' then
	owner = string.sub(head, 2)
else
	local dot = string.find(head, '.', 1, true)
	if dot then
		owner = string.sub(head, 1, dot - 1)
	end
end
if owner ~= me and not string.find(',' .. q .. ',', ',' .. me .. ',', 1, true) then
	if q == '' then
		q = me
	else
		q = q .. ',' .. me
	end
	setKeepingTTL(KEYS[1], head .. '|' .. q, t)
end
if t == -1 then
	return -1
end
if t < 1 then
	return 1
end
return t
`)

// releaseScript releases KEYS[1] if it still holds token ARGV[1]: with an
// empty queue it deletes the key, otherwise it reserves the key for the
// first process of the queue for ARGV[2] ms. Then it publishes on the
// channel of the same name, waking the waiters of every replica. It
// returns 1 when released, 0 when the lock was no longer ours.
var releaseScript = redis.NewScript(luaHelpers + `
local v = redis.call('get', KEYS[1])
if not v then
	return 0
end
local head, q = split(v)
if head ~= ARGV[1] then
	return 0
end
if q == '' then
	redis.call('del', KEYS[1])
else
	local first, rest = q, ''
	local comma = string.find(q, ',', 1, true)
	if comma then
		first, rest = string.sub(q, 1, comma - 1), string.sub(q, comma + 1)
	end
	local nv = '@' .. first
	if rest ~= '' then
		nv = nv .. '|' .. rest
	end
	redis.call('set', KEYS[1], nv, 'PX', ARGV[2])
end
redis.call('publish', KEYS[1], '')
return 1
`)

// leaveScript takes process ARGV[1], which gave up waiting, out of the
// queue of KEYS[1]; a reservation for it passes to the next in the queue
// (for ARGV[2] ms), or ends, and the waiters are told. It returns 1 when
// it changed the key.
var leaveScript = redis.NewScript(luaHelpers + `
local v = redis.call('get', KEYS[1])
if not v then
	return 0
end
local head, q = split(v)
local me = ARGV[1]
local rest = {}
for p in string.gmatch(q, '[^,]+') do
	if p ~= me then
		table.insert(rest, p)
	end
end
local nq = table.concat(rest, ',')
if head == '@' .. me then
	if nq == '' then
		redis.call('del', KEYS[1])
	else
		local nv = '@' .. table.remove(rest, 1)
		if #rest > 0 then
			nv = nv .. '|' .. table.concat(rest, ',')
		end
		redis.call('set', KEYS[1], nv, 'PX', ARGV[2])
	end
	redis.call('publish', KEYS[1], '')
	return 1
end
if nq == q then
	return 0
end
local nv = head
if nq ~= '' then
	nv = nv .. '|' .. nq
end
setKeepingTTL(KEYS[1], nv, redis.call('pttl', KEYS[1]))
return 1
`)

// renewScript sets the lease of KEYS[1] to ARGV[2] ms if it is still held
// with token ARGV[1] (queue or not). It returns 1 when renewed, 0 when the
// lock is gone.
var renewScript = redis.NewScript(`
local v = redis.call('get', KEYS[1])
if v and (v == ARGV[1] or string.sub(v, 1, #ARGV[1] + 1) == ARGV[1] .. '|') then
	return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
`)
