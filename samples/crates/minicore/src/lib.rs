//! The handful of lang items a `#![no_core]` crate needs, plus a few functions
//! the binaries call so the PDBs have more than one symbol and some line info.
#![feature(no_core, lang_items, intrinsics)]
#![no_core]
#![allow(internal_features)]

#[lang = "pointee_sized"]
pub trait PointeeSized {}
#[lang = "meta_sized"]
pub trait MetaSized: PointeeSized {}
#[lang = "sized"]
pub trait Sized: MetaSized {}
#[lang = "copy"]
pub trait Copy {}

impl Copy for i32 {}
impl Copy for u32 {}
impl Copy for usize {}
impl<T: ?Sized> Copy for *mut T {}
impl<T: ?Sized> Copy for *const T {}

#[lang = "add"]
pub trait Add<Rhs = Self> {
    type Output;
    fn add(self, rhs: Rhs) -> Self::Output;
}

impl Add for i32 {
    type Output = i32;
    #[inline]
    fn add(self, rhs: i32) -> i32 {
        self + rhs
    }
}

/// Writes through `p`: with a null pointer this is the access violation
/// (C0000005) that `crash-me` exists to produce.
#[inline(never)]
pub fn poke(p: *mut i32, value: i32) {
    unsafe { *p = value }
}

#[inline(never)]
pub fn answer(seed: i32) -> i32 {
    seed + 41
}
