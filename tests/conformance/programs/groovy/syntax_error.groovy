def f( {
    println "unreachable"
