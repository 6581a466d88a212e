package keys

// Seal and Open expose the sealing of private keys to the tests.
var (
	Seal = seal
	Open = open
)

// RSABits is the size of generated RSA keys.
const RSABits = rsaBits
