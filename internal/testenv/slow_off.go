//go:build !soak

package testenv

const slowBuild = false
