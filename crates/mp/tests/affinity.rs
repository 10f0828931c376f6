//! `mp::affinity`: the calling thread's CPUs, read and set, and clear errors for sets the
//! kernel refuses. Each test runs on a thread of its own and changes only that thread.

fn on_a_thread<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| scope.spawn(f).join().unwrap())
}

#[test]
fn a_thread_bound_to_one_cpu_runs_there_and_can_be_unbound() {
    on_a_thread(|| {
        let allowed = mp::affinity::get().unwrap();
        assert!(!allowed.is_empty());
        assert!(allowed.windows(2).all(|pair| pair[0] < pair[1]), "in increasing order");
        let last = *allowed.last().unwrap();
        mp::affinity::set(&[last]).unwrap();
        assert_eq!(mp::affinity::get().unwrap(), [last]);
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        // Field 39 ("processor"), counted after the command name's closing parenthesis.
        let after_name = &stat[stat.rfind(')').unwrap() + 2..];
        let processor: usize = after_name.split(' ').nth(36).unwrap().parse().unwrap();
        assert_eq!(processor, last, "the kernel moved the thread before set returned");
        mp::affinity::set(&allowed).unwrap();
        assert_eq!(mp::affinity::get().unwrap(), allowed);
    });
}

#[test]
fn sets_the_kernel_refuses_are_invalid_arguments_that_list_the_allowed_cpus() {
    on_a_thread(|| {
        let allowed = mp::affinity::get().unwrap();
        let listed = format!("{allowed:?}");
        let not_here = (0..1024).find(|cpu| !allowed.contains(cpu)).unwrap();
        for (cpus, says) in [
            (vec![], "no CPU given".to_string()),
            (vec![not_here], format!("none of CPUs [{not_here}]")),
            (vec![5000], "CPU 5000 is beyond the 1024 CPUs".to_string()),
            (vec![allowed[0], usize::MAX], "is beyond the 1024 CPUs".to_string()),
        ] {
            let error = mp::affinity::set(&cpus).unwrap_err();
            assert!(matches!(error, mp::Error::InvalidArgument { .. }), "{cpus:?}: {error:?}");
            let message = error.to_string();
            assert!(message.contains(&says), "{cpus:?}: {message}");
            assert!(message.contains(&listed), "{cpus:?} names the allowed CPUs: {message}");
        }
        assert_eq!(mp::affinity::get().unwrap(), allowed, "a refused set changes nothing");
    });
}
