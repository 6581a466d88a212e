package token

// CachedTokens is the number of tokens in the verified-token cache.
func (i *Issuer) CachedTokens() int { return i.verified.len() }

// MaxVerified is the bound of the verified-token cache.
const MaxVerified = maxVerified
