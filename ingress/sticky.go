package ingress

// buckets is the number of buckets a sticky key hashes to: a percentage P
// takes the buckets below P*100.
const buckets = 10000

// 64-bit FNV-1a.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// StickyBucket returns the bucket, from 0 to 9999, of key in lane: a sticky
// rule with percentage P assigns lane to the keys whose bucket is below
// P*100. The lane is the salt, so that rules of different lanes pick
// independent sets of keys; the bucket of a key never changes, so raising P
// keeps every key that was in.
//
// The function is part of the contract: FNV-1a (64 bits) of the lane, a zero
// byte and the key, finished with the 64-bit mixer of MurmurHash3, modulo
// 10000. Gateways of any version and any replica agree on it.
func StickyBucket(lane, key string) int {
	return bucket(laneSalt(lane), key)
}

// laneSalt is the FNV-1a state after the lane and its zero-byte
// separator.
func laneSalt(lane string) uint64 {
	return fnvString(fnvString(fnvOffset, lane), "\x00")
}

func bucket(salt uint64, key string) int {
	return int(mix64(fnvString(salt, key)) % buckets)
}

func fnvString(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	return h
}

// mix64 spreads the bits of h over the whole word (MurmurHash3's fmix64),
// so that keys that differ only in their last bytes land far apart.
func mix64(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}
