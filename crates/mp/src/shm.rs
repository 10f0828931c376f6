//! Shared memory: an array of numbers that several processes read and write in place
//! (Python's `multiprocessing.RawArray` and `shared_memory.SharedMemory`).
//!
//! A [`SharedArray`] is an anonymous memory file (Linux `memfd`) mapped into every process that
//! holds it. Passing it to a process (in a [`Process`](crate::Process) argument, a pool task or a
//! message) maps the same memory there: no copy is made. The memory has no name in /dev/shm
//! and is freed by the kernel when the last process using it is gone, even after a crash, so
//! nothing is ever left behind (Python's `SharedMemory` needs `unlink()`, once, for that).
//!
//! Each element is read and written atomically, so concurrent access is safe, but a
//! read-modify-write such as `a.set(i, a.get(i) + 1)` from two processes can lose updates:
//! use [`SharedArray::fetch_add`] (integers), or give each process its own part of the array.

use std::{fmt, marker::PhantomData, os::fd::AsFd, sync::Arc};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{Error, Result, sys, wire::PassedFd};

/// The element types a [`SharedArray`] can hold: `f64`, `f32`, `u64`, `i64`, `u32` and `i32`.
///
/// The trait is sealed (no other type can implement it), but generic code can name it.
///
/// ```
/// use mp::Element;
/// fn bytes_for<T: Element>(len: usize) -> usize { len * T::SIZE }
/// assert_eq!(bytes_for::<f32>(10), 40);
/// assert_eq!(<i64 as Element>::NAME, "i64");
/// ```
pub trait Element: Copy + Send + Sync + fmt::Debug + 'static + private::Sealed {
    /// A name for error messages (`"f64"`).
    const NAME: &'static str;
    /// Size in bytes.
    const SIZE: usize;
}

mod private {
    /// Atomic access to one element; sealed so only the types below can be elements.
    pub trait Sealed: Sized {
        fn load(mapping: &crate::sys::SharedMapping, index: usize) -> Self;
        fn store(mapping: &crate::sys::SharedMapping, index: usize, value: Self);
    }
}

use std::sync::atomic::Ordering::{Acquire, Release};

macro_rules! element {
    ($type:ty, $size:literal, $atomic:ident, $bits:ty, $to:expr, $from:expr) => {
        impl Element for $type {
            const NAME: &'static str = stringify!($type);
            const SIZE: usize = $size;
        }
        impl private::Sealed for $type {
            fn load(mapping: &sys::SharedMapping, index: usize) -> Self {
                let bits: $bits = mapping.$atomic(index).load(Acquire);
                $from(bits)
            }
            fn store(mapping: &sys::SharedMapping, index: usize, value: Self) {
                let bits: $bits = $to(value);
                mapping.$atomic(index).store(bits, Release);
            }
        }
    };
}

element!(f64, 8, atomic_u64, u64, f64::to_bits, f64::from_bits);
element!(f32, 4, atomic_u32, u32, f32::to_bits, f32::from_bits);
element!(u64, 8, atomic_u64, u64, |value| value, |bits| bits);
element!(i64, 8, atomic_u64, u64, |value: i64| value as u64, |bits: u64| bits as i64);
element!(u32, 4, atomic_u32, u32, |value| value, |bits| bits);
element!(i32, 4, atomic_u32, u32, |value: i32| value as u32, |bits: u32| bits as i32);

/// An array of `T` in memory shared between processes.
///
/// ```
/// # fn main() -> mp::Result<()> {
/// # mp::init();
/// use mp::SharedArray;
///
/// fn fill_my_half((array, rank): (SharedArray<f64>, usize)) {
///     let half = array.len() / 2;
///     for index in rank * half..(rank + 1) * half {
///         array.set(index, rank as f64 + 0.5);
///     }
/// }
///
/// let array = SharedArray::<f64>::new(4)?;
/// let mut workers: Vec<_> = (0..2)
///     .map(|rank| mp::Process::spawn(fill_my_half, (array.clone(), rank)))
///     .collect::<mp::Result<_>>()?;
/// for worker in &mut workers {
///     worker.join()?;
/// }
/// assert_eq!(array.to_vec(), [0.5, 0.5, 1.5, 1.5]);
/// # Ok(()) }
/// ```
pub struct SharedArray<T: Element> {
    inner: Arc<Inner>,
    _type: PhantomData<T>,
}

struct Inner {
    fd: std::os::fd::OwnedFd,
    mapping: sys::SharedMapping,
    len: usize,
}

impl<T: Element> SharedArray<T> {
    /// A new array of `len` zeros (Python's `RawArray('d', len)`).
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// let array = mp::SharedArray::<f64>::new(3)?;
    /// assert_eq!(array.to_vec(), [0.0, 0.0, 0.0]);
    /// # Ok(()) }
    /// ```
    pub fn new(len: usize) -> Result<SharedArray<T>> {
        let n_bytes = len
            .checked_mul(T::SIZE)
            .ok_or_else(|| Error::invalid(format!("{len} elements is too many")))?;
        let fd = sys::memfd("mp-shared-array", n_bytes).map_err(|error| {
            Error::io(format!("creating {n_bytes} bytes of shared memory"), error)
        })?;
        let mapping = sys::SharedMapping::new(fd.as_fd(), n_bytes).map_err(|error| {
            Error::io(format!("mapping {n_bytes} bytes of shared memory"), error)
        })?;
        Ok(SharedArray { inner: Arc::new(Inner { fd, mapping, len }), _type: PhantomData })
    }

    /// A new array holding a copy of `values`.
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// let array = mp::SharedArray::from_slice(&[1i64, 2, 3])?;
    /// assert_eq!(array.to_vec(), [1, 2, 3]);
    /// # Ok(()) }
    /// ```
    pub fn from_slice(values: &[T]) -> Result<SharedArray<T>> {
        let array = SharedArray::new(values.len())?;
        array.write_slice(0, values);
        Ok(array)
    }

    /// The number of elements.
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// assert_eq!(mp::SharedArray::<u32>::new(5)?.len(), 5);
    /// # Ok(()) }
    /// ```
    pub fn len(&self) -> usize {
        self.inner.len
    }

    /// True for an array of no elements.
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// assert!(mp::SharedArray::<u32>::new(0)?.is_empty());
    /// assert!(!mp::SharedArray::<u32>::new(1)?.is_empty());
    /// # Ok(()) }
    /// ```
    pub fn is_empty(&self) -> bool {
        self.inner.len == 0
    }

    /// The element at `index`. Panics if `index >= len()`, like slice indexing.
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// let array = mp::SharedArray::from_slice(&[10i32, -20])?;
    /// assert_eq!(array.get(1), -20);
    /// assert!(std::panic::catch_unwind(|| array.get(2)).is_err());
    /// # Ok(()) }
    /// ```
    pub fn get(&self, index: usize) -> T {
        self.check_index(index);
        T::load(&self.inner.mapping, index)
    }

    /// Writes `value` at `index`; every process holding the array sees it. Panics if
    /// `index >= len()`.
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// let array = mp::SharedArray::<f64>::new(2)?;
    /// let view = array.clone(); // a clone, like a copy in another process, shares the memory
    /// array.set(0, 2.5);
    /// assert_eq!(view.get(0), 2.5);
    /// # Ok(()) }
    /// ```
    pub fn set(&self, index: usize, value: T) {
        self.check_index(index);
        T::store(&self.inner.mapping, index, value);
    }

    /// Copies `values` into the array starting at `offset`. Panics if they do not fit.
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// let array = mp::SharedArray::<u32>::new(5)?;
    /// array.write_slice(1, &[7, 8]);
    /// assert_eq!(array.to_vec(), [0, 7, 8, 0, 0]);
    /// # Ok(()) }
    /// ```
    pub fn write_slice(&self, offset: usize, values: &[T]) {
        let fits = offset.checked_add(values.len()).is_some_and(|end| end <= self.inner.len);
        assert!(
            fits,
            "cannot write {} values at offset {offset} into a SharedArray of length {}",
            values.len(),
            self.inner.len
        );
        for (position, value) in values.iter().enumerate() {
            T::store(&self.inner.mapping, offset + position, *value);
        }
    }

    /// A copy of the whole array; later writes do not change the copy.
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// let array = mp::SharedArray::from_slice(&[1u64, 2])?;
    /// let copy = array.to_vec();
    /// array.set(0, 9);
    /// assert_eq!((copy, array.to_vec()), (vec![1, 2], vec![9, 2]));
    /// # Ok(()) }
    /// ```
    pub fn to_vec(&self) -> Vec<T> {
        (0..self.inner.len).map(|index| T::load(&self.inner.mapping, index)).collect()
    }

    fn check_index(&self, index: usize) {
        assert!(
            index < self.inner.len,
            "index {index} is out of bounds for a SharedArray of length {}",
            self.inner.len
        );
    }
}

macro_rules! fetch_add {
    ($type:ty, $atomic:ident, $bits:ty) => {
        impl SharedArray<$type> {
            /// Adds `value` to the element at `index` atomically (no update is lost, whatever
            /// other processes do at the same time) and returns the previous value. Wraps on
            /// overflow.
            ///
            /// ```
            /// # fn main() -> mp::Result<()> {
            #[doc = concat!("let counters = mp::SharedArray::<", stringify!($type), ">::new(1)?;")]
            /// counters.fetch_add(0, 5);
            /// assert_eq!(counters.get(0), 5);
            /// # Ok(()) }
            /// ```
            pub fn fetch_add(&self, index: usize, value: $type) -> $type {
                self.check_index(index);
                self.inner
                    .mapping
                    .$atomic(index)
                    .fetch_add(value as $bits, std::sync::atomic::Ordering::AcqRel) as $type
            }
        }
    };
}

impl SharedArray<u64> {
    /// The element at `index` as an atomic word, for protocols between processes (a pool's
    /// claim words).
    pub(crate) fn word(&self, index: usize) -> &std::sync::atomic::AtomicU64 {
        self.check_index(index);
        self.inner.mapping.atomic_u64(index)
    }
}

fetch_add!(u64, atomic_u64, u64);
fetch_add!(i64, atomic_u64, u64);
fetch_add!(u32, atomic_u32, u32);
fetch_add!(i32, atomic_u32, u32);

/// Clones share the same memory.
impl<T: Element> Clone for SharedArray<T> {
    fn clone(&self) -> Self {
        SharedArray { inner: Arc::clone(&self.inner), _type: PhantomData }
    }
}

impl<T: Element> fmt::Debug for SharedArray<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedArray")
            .field("element", &T::NAME)
            .field("len", &self.inner.len)
            .finish()
    }
}

#[derive(Serialize, Deserialize)]
struct Wire {
    fd: PassedFd,
    len: u64,
    element: String,
}

impl<T: Element> Serialize for SharedArray<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let fd = self.inner.fd.try_clone().map_err(serde::ser::Error::custom)?;
        Wire { fd: PassedFd(fd), len: self.inner.len as u64, element: T::NAME.into() }
            .serialize(serializer)
    }
}

impl<'de, T: Element> Deserialize<'de> for SharedArray<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let wire = Wire::deserialize(deserializer)?;
        if wire.element != T::NAME {
            return Err(serde::de::Error::custom(format!(
                "a SharedArray<{}> arrived where a SharedArray<{}> was expected",
                wire.element,
                T::NAME
            )));
        }
        let len = wire.len as usize;
        let n_bytes = sys::file_size(wire.fd.as_fd()).map_err(serde::de::Error::custom)?;
        if n_bytes != len * T::SIZE {
            return Err(serde::de::Error::custom("a shared array arrived with the wrong size"));
        }
        let mapping =
            sys::SharedMapping::new(wire.fd.as_fd(), n_bytes).map_err(serde::de::Error::custom)?;
        Ok(SharedArray {
            inner: Arc::new(Inner { fd: wire.fd.0, mapping, len }),
            _type: PhantomData,
        })
    }
}
