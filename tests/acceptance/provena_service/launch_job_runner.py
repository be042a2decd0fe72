from jobs.job_runner import run

if __name__ == "__main__":
    print("Launching worker.")
    run()
    print("Returned.")
