package redisstore

// The Lua scripts each touch exactly one key, named in KEYS[1], so that
// they are single-slot operations that a cluster client routes to the key's
// master. [Store.eval] sends EVALSHA and falls back to EVAL when a server
// does not know the script yet. Redis runs a script atomically: no other
// command sees it half done.
//
// GET gives false for an absent key, and a Lua string never equals false,
// so a non-nil old never matches an absent key and an empty old matches
// only a stored empty string. Lua strings hold any bytes, NUL included, and
// compare byte for byte.

// casScript is CompareAndSwap. ARGV[1] is the new value, ARGV[2] the PX in
// milliseconds ("0": no expiry) and ARGV[3], when present, the old value;
// without ARGV[3] the swap happens only if the key is absent. A key that
// already holds the new value also swaps (it is set again with the ttl) and
// returns 1: that is a resent swap whose first attempt landed, and the
// store contract's resend rule. It returns 1 for a swap, 0 otherwise.
var casScript = newScript(`
local cur = redis.call('GET', KEYS[1])
if cur ~= ARGV[1] then
  if #ARGV > 2 then
    if cur ~= ARGV[3] then return 0 end
  elseif cur then
    return 0
  end
end
if ARGV[2] ~= '0' then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
else
  redis.call('SET', KEYS[1], ARGV[1])
end
return 1
`)

// cadScript is CompareAndDelete: it deletes KEYS[1] if it holds ARGV[1]
// and returns 1 when it deleted it, 0 when the key holds another value or
// is absent.
var cadScript = newScript(`
local cur = redis.call('GET', KEYS[1])
if not cur then return 0 end
if cur ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
`)

// persistScript removes the expiry of KEYS[1] and returns 1 when the key
// exists, 0 otherwise. PERSIST alone answers 0 both for an absent key and
// for a key without expiry, which Touch must tell apart.
var persistScript = newScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('PERSIST', KEYS[1])
return 1
`)

// getTTLScript is GetWithTTL through the auto-pipeliner: GET and PTTL of
// KEYS[1] as one command, so that they travel in one batch. It answers
// {value, pttl}, the value false (nil) for an absent key.
var getTTLScript = newScript(`
return {redis.call('GET', KEYS[1]), redis.call('PTTL', KEYS[1])}
`)
